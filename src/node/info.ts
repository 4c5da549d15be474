// Introspection handlers with Brunet's names, used by crawl and the control API.
import type { Value } from '../wire/value.js';
import type { Node } from './node.js';
import type { RandomSource } from '../util/random.js';

export function neighbors(n: Node): { [k: string]: Value } {
  const { left, right } = n.table.neighborsOf(n.address, 2);
  const out: { [k: string]: Value } = { self: n.address.key };
  if (left[0]) out.left = left[0].address.key;
  if (left[1]) out.left2 = left[1].address.key;
  if (right[0]) out.right = right[0].address.key;
  if (right[1]) out.right2 = right[1].address.key;
  const sc = n.table.structured.filter((c) => c.type === 'structured.shortcut');
  if (sc.length > 0) out.shortcut = sc[n.random.int(sc.length)]!.address.key;
  return out;
}

export function information(n: Node): { [k: string]: Value } {
  const edges: { [k: string]: number } = { udp: 0, tcp: 0, tunnel: 0 };
  let sas = 0, wedges = 0;
  for (const l of n.listeners) {
    edges[l.kind] = (edges[l.kind] ?? 0) + l.edgeCount;
    // Secure wrappers report their security associations and wrapped edges.
    const sec = l as Partial<{ securityAssociations: number; wrappedEdges: number }>;
    sas += sec.securityAssociations ?? 0;
    wedges += sec.wrappedEdges ?? 0;
  }
  const localips = [...new Set(n.info().tas.filter((t) => t.kind !== 'function' && t.kind !== 'tunnel' && t.host !== '127.0.0.1').map((t) => t.host))];
  return {
    type: n.type,
    namespace: n.namespace,
    localips,
    neighbors: neighbors(n),
    ...edges,
    cons: n.table.size,
    wedges,
    sas,
    state: n.status,
    size_estimate: n.sizeEstimate(),
    // How peers see us (NAT mappings), newest first: what NAT traversal works with.
    natviews: n.nat.list(n.clock.now()).slice(0, 8).map((v) => `${v.ta.key} ${Math.round(v.ageMs / 1000)}s`),
  };
}

/** Every connection with its type and the kind of edge under it (udp, tcp, tunnel). */
export function connections(n: Node): Value[] {
  const now = n.clock.now();
  return [...n.table.all()].map((c) => ({
    address: c.address.key, type: c.type, kind: c.edge.kind, remote: c.edge.remoteTA.key, age_ms: Math.round(now - c.createdAt),
    ...(c.edge.kind === 'tunnel' ? { via: (n.tunnel?.forwardersFor(c.address) ?? []).map((a) => a.key) } : {}),
  }));
}

/**
 * Information.Info's optional arguments: the crawl's extra sections, so one routed call per
 * node replaces three, and the sections' version the caller already holds. 'tas' adds the
 * node's TAs; 'connections' its connections as { address, type, kind }. With sections the
 * reply carries `version`, which changes whenever the TAs or the connection table do; when
 * the caller's version is still current, the sections are left out (a reply of one datagram
 * instead of several: a crawl re-asks every node). Brunet's nodes (and older ones) ignore the
 * arguments.
 */
export const CRAWL_SECTIONS = ['tas', 'connections'] as const;

/** What the crawl sections were when last answered: reused until the table or the TAs change. */
interface Sections { epoch: string; changes: number; tasKey: string; version: string; tas: string[]; connections?: Value[] }

function sectionsOf(n: Node, state: Sections): Sections {
  const tas = n.info().tas.map((t) => t.key);
  const tasKey = tas.join(' ');
  if (tasKey !== state.tasKey) { state.tasKey = tasKey; state.changes++; state.tas = tas; }
  const version = `${state.epoch}.${state.changes}`;
  if (version !== state.version) { state.version = version; state.connections = undefined; }
  return state;
}

function informationWith(n: Node, state: Sections, sections: Value | undefined, known: Value | undefined): { [k: string]: Value } {
  const info = information(n);
  if (!Array.isArray(sections)) return info;
  const s = sectionsOf(n, state);
  info.version = s.version;
  if (known === s.version) return info;
  if (sections.includes('tas')) info.tas = s.tas;
  if (sections.includes('connections')) info.connections = s.connections ??= [...n.table.all()].map((c) => ({ address: c.address.key, type: c.type, kind: c.edge.kind }));
  return info;
}

export function registerInfoHandlers(n: Node, random: RandomSource): void {
  n.rpc.register('ConnectionTable.GetConnections', () => connections(n));
  n.rpc.register('sys:link.GetNeighbors', () => neighbors(n));
  // A random epoch: a restarted node with the same address never repeats an old version.
  const state: Sections = { epoch: random.int(2 ** 31).toString(36), changes: 0, tasKey: '', version: '', tas: [] };
  n.table.onChange(() => { state.changes++; });
  n.rpc.register('Information.Info', (args) => informationWith(n, state, args[0], args[1]));
  n.rpc.register('sys:link.Ping', (args) => args[0] ?? null);
  n.rpc.register('sys:link.GetNodeInfo', () => ({ address: n.address.key, tas: n.info().tas.map((t) => t.key) }));
}
