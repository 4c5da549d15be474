// Helpers for ring tests: build many nodes, wait (bounded) for a consistent ring, and
// check the ring the way crawl does.
import { Node, type NodeOptions } from '../../src/node/node.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { UdpEdgeListener } from '../../src/transport/udp.js';
import { TcpEdgeListener } from '../../src/transport/tcp.js';
import { realClock } from '../../src/util/clock.js';
import { cryptoRandom } from '../../src/util/random.js';
import type { TransportAddress } from '../../src/transport/ta.js';

export const FAST = {
  link: { pingAfterMs: 1000, timeoutMs: 3000, unlinkedEdgeMs: 5000 },
  near: { settleMs: 3000 },
  shortcut: { settleMs: 3000 },
  leaf: { lingerMs: 5000 },
  heartbeatMs: 250,
} satisfies Partial<NodeOptions>;

export type Kind = 'memory' | 'udp' | 'tcp';

export async function startRing(n: number, kind: Kind, opts: Partial<NodeOptions> & { namespace?: string; bootstrap?: readonly TransportAddress[]; net?: MemoryNetwork } = {}): Promise<Node[]> {
  const net = opts.net ?? new MemoryNetwork();
  const nodes: Node[] = [];
  let boot = opts.bootstrap;
  for (let i = 0; i < n; i++) {
    const listener = kind === 'memory' ? net.listener()
      : kind === 'udp' ? new UdpEdgeListener({ port: 0, host: '127.0.0.1', clock: realClock, random: cryptoRandom })
      : new TcpEdgeListener({ port: 0, host: '127.0.0.1', clock: realClock, random: cryptoRandom });
    const node = new Node({ ...FAST, ...opts, namespace: opts.namespace ?? 'testns', listeners: [listener], remoteTAs: boot ?? [] });
    await node.start();
    if (!boot) boot = listener.localTAs();
    nodes.push(node);
  }
  return nodes;
}

/** Crawl-style consistency over in-process nodes: the four neighbour checks per node. */
export function consistency(nodes: Node[]): number {
  const byKey = new Map(nodes.map((n) => [n.address.key, n]));
  let ok = 0;
  for (const n of nodes) {
    const nb = n.table.neighborsOf(n.address, 2);
    const side = (m: Node | undefined, dir: 'left' | 'right', i: number) => m?.table.neighborsOf(m.address, 2)[dir][i]?.address.key;
    const l = byKey.get(nb.left[0]?.address.key ?? ''), r = byKey.get(nb.right[0]?.address.key ?? '');
    const l2 = byKey.get(nb.left[1]?.address.key ?? ''), r2 = byKey.get(nb.right[1]?.address.key ?? '');
    if (side(r, 'left', 0) === n.address.key) ok++;
    if (side(l, 'right', 0) === n.address.key) ok++;
    if (side(l2, 'right', 1) === n.address.key) ok++;
    if (side(r2, 'left', 1) === n.address.key) ok++;
  }
  return nodes.length === 0 ? 0 : ok / (4 * nodes.length);
}

/** Also checks that each node's neighbours are the true ring neighbours. */
export function ringCorrect(nodes: Node[]): boolean {
  const sorted = [...nodes].sort((a, b) => (a.address.value < b.address.value ? -1 : 1));
  const n = sorted.length;
  return sorted.every((node, i) => {
    const nb = node.table.neighborsOf(node.address, 2);
    return nb.left[0]?.address.key === sorted[(i + 1) % n]!.address.key && nb.right[0]?.address.key === sorted[(i - 1 + n) % n]!.address.key;
  });
}

export async function waitFor(cond: () => boolean, timeoutMs: number, stepMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return cond();
}

export async function stopAll(nodes: Node[]): Promise<void> {
  await Promise.all(nodes.map((n) => n.stop()));
}
