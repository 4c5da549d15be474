// Prometheus metrics for GET /metrics on the control port: one prom-client Registry per
// process (never the global one: tests and several overlays share a process). Nothing here
// runs per packet: each scrape takes one snapshot of the counters the layers already keep
// (listener, link, router, RPC, DHT, secure and relay stats) and the collect() callbacks
// read it. The nodes of a `--nodes N` process are summed, not labelled per node: 1,000 nodes
// times ~100 series would be 100,000 series per scrape; per-node detail is what crawl, the
// web view and Information.Info are for. Services above this layer (the VPN) add their own
// metrics with counterOf/gaugeOf on `registry`.
import type http from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { LinkStats } from '../connection/link-manager.js';
import type { DhtService } from '../dht/service.js';
import type { SecureStats } from '../edge/secure-types.js';
import type { Node } from '../node/node.js';
import type { RouterStats } from '../routing/router.js';
import type { RpcManager } from '../rpc/rpc-manager.js';
import type { EdgeListener, TransportStats } from '../transport/edge.js';

type RpcStats = RpcManager['stats'];

export type Labels = Record<string, string>;
export type Sample = readonly [labels: Labels, value: number];

/** A counter whose value is read from existing totals at scrape time. */
export function counterOf(registry: Registry, name: string, help: string, labelNames: string[], read: () => Iterable<Sample>): Counter {
  return new Counter({
    name, help, labelNames, registers: [registry],
    collect() { this.reset(); for (const [l, v] of read()) this.inc(l, v); },
  });
}

/** A gauge whose value is read at scrape time. */
export function gaugeOf(registry: Registry, name: string, help: string, labelNames: string[], read: () => Iterable<Sample>): Gauge {
  return new Gauge({
    name, help, labelNames, registers: [registry],
    collect() { this.reset(); for (const [l, v] of read()) this.set(l, v); },
  });
}

type Totals = Record<string, number>;

/** Adds every numeric field of `s` (nested records too, as `field.key`) into `acc`. */
function addInto(acc: Totals, s: object, prefix = ''): void {
  const o = s as Record<string, unknown>;
  for (const k in o) {
    const v = o[k];
    if (typeof v === 'number') {
      const key = prefix === '' ? k : prefix + k;
      acc[key] = (acc[key] ?? 0) + v;
    } else if (v && typeof v === 'object') addInto(acc, v, `${prefix}${k}.`);
  }
}

/**
 * The totals of the fields the metrics below export, summed over the nodes' stats objects, one
 * named (typed) read per field: a renamed counter fails to compile instead of exporting 0. A
 * field an object lacks adds 0.
 */
type TransportFields = TransportStats & Partial<Record<'socketErrors' | 'handlerErrors' | 'relayed' | 'relayedBytes' | 'capDrops' | 'noRoute'
  | 'unknownEdge' | 'refused' | 'fragmentedOut' | 'fragmentRequests' | 'fragmentsResent' | 'fragmentedLost' | 'fragmentDrops', number>>;

function sumTransport(list: readonly TransportFields[]): Totals {
  const t = { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, malformed: 0, sendErrors: 0, socketErrors: 0, handlerErrors: 0,
    relayed: 0, relayedBytes: 0, capDrops: 0, noRoute: 0, unknownEdge: 0, refused: 0,
    fragmentedOut: 0, fragmentRequests: 0, fragmentsResent: 0, fragmentedLost: 0, fragmentDrops: 0 };
  for (const s of list) {
    t.packetsIn += s.packetsIn; t.packetsOut += s.packetsOut; t.bytesIn += s.bytesIn; t.bytesOut += s.bytesOut;
    t.malformed += s.malformed; t.sendErrors += s.sendErrors;
    t.socketErrors += s.socketErrors ?? 0; t.handlerErrors += s.handlerErrors ?? 0;
    t.relayed += s.relayed ?? 0; t.relayedBytes += s.relayedBytes ?? 0; t.capDrops += s.capDrops ?? 0;
    t.noRoute += s.noRoute ?? 0; t.unknownEdge += s.unknownEdge ?? 0; t.refused += s.refused ?? 0;
    t.fragmentedOut += s.fragmentedOut ?? 0; t.fragmentRequests += s.fragmentRequests ?? 0;
    t.fragmentsResent += s.fragmentsResent ?? 0; t.fragmentedLost += s.fragmentedLost ?? 0; t.fragmentDrops += s.fragmentDrops ?? 0;
  }
  return t;
}

function sumLink(list: readonly LinkStats[]): Totals {
  const t = { linked: 0, refused: 0, failed: 0, timeouts: 0, malformed: 0, unlinkedDrops: 0 };
  for (const s of list) {
    t.linked += s.linked; t.refused += s.refused; t.failed += s.failed;
    t.timeouts += s.timeouts; t.malformed += s.malformed; t.unlinkedDrops += s.unlinkedDrops;
  }
  return t;
}

function sumRouting(list: readonly RouterStats[]): Totals {
  const t = { delivered: 0, sent: 0, forwarded: 0, ttlDrops: 0, noRoute: 0, malformed: 0, noHandler: 0, forgedSource: 0 };
  for (const s of list) {
    t.delivered += s.delivered; t.sent += s.sent; t.forwarded += s.forwarded; t.ttlDrops += s.ttlDrops;
    t.noRoute += s.noRoute; t.malformed += s.malformed; t.noHandler += s.noHandler; t.forgedSource += s.forgedSource;
  }
  return t;
}

function sumRpc(list: readonly RpcStats[]): Totals {
  const t = { requests: 0, served: 0, replies: 0, resends: 0, timeouts: 0, errors: 0, malformed: 0 };
  for (const s of list) {
    t.requests += s.requests; t.served += s.served; t.replies += s.replies; t.resends += s.resends;
    t.timeouts += s.timeouts; t.errors += s.errors; t.malformed += s.malformed;
  }
  return t;
}

function sumSecure(list: readonly SecureStats[]): Totals {
  const t: Totals = { packetsIn: 0, packetsOut: 0, handshakesOk: 0, decryptFailures: 0, replays: 0, tooOld: 0, badEpoch: 0, malformed: 0, cookiesInvalid: 0 };
  for (const s of list) {
    t.packetsIn! += s.packetsIn; t.packetsOut! += s.packetsOut; t.handshakesOk! += s.handshakesOk;
    t.decryptFailures! += s.decryptFailures; t.replays! += s.replays; t.tooOld! += s.tooOld; t.badEpoch! += s.badEpoch;
    t.malformed! += s.malformed; t.cookiesInvalid! += s.cookiesInvalid;
    for (const kind in s.handshakesFailed) t[`handshakesFailed.${kind}`] = (t[`handshakesFailed.${kind}`] ?? 0) + s.handshakesFailed[kind]!;
  }
  return t;
}

function sumDht(dhts: readonly DhtService[]): Totals {
  const t = { puts: 0, gets: 0, repairs: 0 };
  for (const d of dhts) { const s = d.dht.stats; t.puts += s.puts; t.gets += s.gets; t.repairs += s.repairs; }
  return t;
}

/**
 * Open connections of one node by `type edgeKind`, recounted only after its table changed:
 * 1,000 nodes hold ~20,000 connections, and counting them all made most of a scrape's cost.
 */
class ConnectionCounts {
  private readonly byNode = new WeakMap<Node, { dirty: boolean; counts: Totals }>();

  of(n: Node): Totals {
    let e = this.byNode.get(n);
    if (!e) {
      const entry = { dirty: true, counts: {} as Totals };
      n.table.onChange(() => { entry.dirty = true; });
      this.byNode.set(n, e = entry);
    }
    if (e.dirty) {
      e.dirty = false;
      const counts: Totals = {};
      for (const c of n.table.all()) {
        const k = `${c.type} ${c.edge.kind}`;
        counts[k] = (counts[k] ?? 0) + 1;
      }
      e.counts = counts;
    }
    return e.counts;
  }
}

interface Snapshot {
  states: Totals;
  /** `type edgeKind` → open connections. */
  connections: Totals;
  /** Raw transport stats by edge kind (udp, tcp, tunnel, …). */
  transport: Record<string, Totals>;
  secure: Totals;
  link: Totals;
  routing: Totals;
  rpc: Totals;
  dht: Totals;
}

/** The listener under any security wrapper. */
function unwrap(l: EdgeListener): EdgeListener {
  const inner = (l as { inner?: EdgeListener }).inner;
  return inner ? unwrap(inner) : l;
}

function isSecure(l: EdgeListener): l is EdgeListener & { stats: SecureStats } {
  const s = (l as { stats?: { handshakesOk?: unknown } }).stats;
  return typeof s?.handshakesOk === 'number';
}

function snapshot(nodes: readonly Node[], dhts: readonly DhtService[], counts: ConnectionCounts): Snapshot {
  const states: Totals = {}, connections: Totals = {}, secure: SecureStats[] = [];
  const transport = new Map<string, TransportFields[]>(), link: LinkStats[] = [], routing: RouterStats[] = [], rpc: RpcStats[] = [];
  for (const n of nodes) {
    const state = n.status;
    states[state] = (states[state] ?? 0) + 1;
    addInto(connections, counts.of(n));
    for (const l of n.listeners) {
      if (isSecure(l)) secure.push(l.stats);
      const raw = unwrap(l) as EdgeListener & { stats?: TransportStats };
      if (raw.stats) {
        let list = transport.get(raw.kind);
        if (!list) transport.set(raw.kind, list = []);
        list.push(raw.stats);
      }
    }
    link.push(n.link.stats);
    routing.push(n.router.stats);
    rpc.push(n.rpc.stats);
  }
  return {
    states, connections, secure: sumSecure(secure),
    transport: Object.fromEntries([...transport].map(([kind, list]) => [kind, sumTransport(list)])),
    link: sumLink(link), routing: sumRouting(routing), rpc: sumRpc(rpc), dht: sumDht(dhts),
  };
}

const v = (t: Totals, k: string): number => t[k] ?? 0;
const rows = (t: Totals, names: Record<string, string>, label: string): Sample[] =>
  Object.entries(names).map(([field, value]) => [{ [label]: value }, v(t, field)]);

/** Secure-layer failures by reason: handshake failure kinds and session drops. */
const SECURE_SESSION_FAILURES = { decryptFailures: 'decrypt', replays: 'replay', tooOld: 'too_old', badEpoch: 'bad_epoch', malformed: 'malformed', cookiesInvalid: 'invalid_cookie' };

/**
 * prom-client defaults whose every scrape walks all of the process's file descriptors, handles
 * or timers: with 1,000 nodes' sockets and timers they cost some 20 ms per scrape, more than
 * all the overlay's metrics. Process CPU and memory, the heap, GC and event-loop lag stay.
 */
export const COSTLY_DEFAULTS = ['process_open_fds', 'nodejs_active_handles', 'nodejs_active_handles_total',
  'nodejs_active_resources', 'nodejs_active_resources_total'] as const;

export class OverlayMetrics {
  readonly registry = new Registry();
  private snap?: Snapshot;
  private readonly counts = new ConnectionCounts();
  private readonly dhtLatency: Histogram;

  constructor(private readonly nodes: readonly Node[], private readonly dhts: readonly DhtService[] = []) {
    const r = this.registry;
    collectDefaultMetrics({ register: r });
    for (const name of COSTLY_DEFAULTS) r.removeSingleMetric(name);
    const s = (): Snapshot => (this.snap ??= snapshot(this.nodes, this.dhts, this.counts));
    gaugeOf(r, 'brunet_nodes', 'Overlay nodes in this process, by state', ['state'], () => Object.entries(s().states).map(([k, n]) => [{ state: k }, n]));
    gaugeOf(r, 'brunet_connections', 'Open connections, by connection type and edge kind (summed over the nodes of this process)', ['type', 'edge'],
      () => Object.entries(s().connections).map(([k, n]) => { const [type, edge] = k.split(' '); return [{ type: type!, edge: edge! }, n]; }));
    const perKind = (f: (t: Totals) => Sample[]) => () => Object.entries(s().transport).flatMap(([edge, t]) => f(t).map(([l, n]) => [{ edge, ...l }, n] as Sample));
    counterOf(r, 'brunet_transport_packets_total', 'Packets on the transport edges, by edge kind', ['edge', 'direction'],
      perKind((t) => [[{ direction: 'in' }, v(t, 'packetsIn')], [{ direction: 'out' }, v(t, 'packetsOut')]]));
    counterOf(r, 'brunet_transport_bytes_total', 'Bytes on the transport edges (framing included), by edge kind', ['edge', 'direction'],
      perKind((t) => [[{ direction: 'in' }, v(t, 'bytesIn')], [{ direction: 'out' }, v(t, 'bytesOut')]]));
    counterOf(r, 'brunet_transport_errors_total', 'Transport packets dropped or failed, by edge kind and error', ['edge', 'error'],
      perKind((t) => rows(t, { malformed: 'malformed', sendErrors: 'send', socketErrors: 'socket', handlerErrors: 'handler' }, 'error')));
    counterOf(r, 'brunet_messages_total', 'Messages in and out by layer (routing: delivered here, originated here, forwarded for others)', ['layer', 'direction'], () => {
      const { secure, routing, rpc } = s();
      const tr = Object.values(s().transport).reduce<Totals>((a, t) => { addInto(a, t); return a; }, {});
      return [
        [{ layer: 'transport', direction: 'in' }, v(tr, 'packetsIn')], [{ layer: 'transport', direction: 'out' }, v(tr, 'packetsOut')],
        [{ layer: 'secure', direction: 'in' }, v(secure, 'packetsIn')], [{ layer: 'secure', direction: 'out' }, v(secure, 'packetsOut')],
        [{ layer: 'routing', direction: 'in' }, v(routing, 'delivered')], [{ layer: 'routing', direction: 'out' }, v(routing, 'sent')],
        [{ layer: 'routing', direction: 'forwarded' }, v(routing, 'forwarded')],
        [{ layer: 'rpc', direction: 'in' }, v(rpc, 'served') + v(rpc, 'replies')], [{ layer: 'rpc', direction: 'out' }, v(rpc, 'requests') + v(rpc, 'served')],
      ];
    });
    counterOf(r, 'brunet_bytes_total', 'Bytes in and out by layer (transport: all edge kinds; relay: carried inside relay edges)', ['layer', 'direction'], () => {
      const tr = Object.values(s().transport).reduce<Totals>((a, t) => { addInto(a, t); return a; }, {});
      const rel = s().transport.tunnel ?? {};
      return [[{ layer: 'transport', direction: 'in' }, v(tr, 'bytesIn')], [{ layer: 'transport', direction: 'out' }, v(tr, 'bytesOut')],
        [{ layer: 'relay', direction: 'in' }, v(rel, 'bytesIn')], [{ layer: 'relay', direction: 'out' }, v(rel, 'bytesOut')]];
    });
    counterOf(r, 'brunet_link_events_total', 'Link layer: connections made, attempts refused or failed, timeouts, drops', ['event'],
      () => rows(s().link, { linked: 'linked', refused: 'refused', failed: 'failed', timeouts: 'timeout', malformed: 'malformed', unlinkedDrops: 'unlinked_drop' }, 'event'));
    counterOf(r, 'brunet_routing_drops_total', 'Routed packets dropped, by reason', ['reason'],
      () => rows(s().routing, { ttlDrops: 'ttl', noRoute: 'no_route', malformed: 'malformed', noHandler: 'no_handler', forgedSource: 'forged_source' }, 'reason'));
    counterOf(r, 'brunet_rpc_calls_total', 'RPC requests this process made', [], () => [[{}, v(s().rpc, 'requests')]]);
    counterOf(r, 'brunet_rpc_served_total', 'RPC requests this process answered (duplicates excluded)', [], () => [[{}, v(s().rpc, 'served')]]);
    counterOf(r, 'brunet_rpc_resends_total', 'RPC requests sent again after no reply', [], () => [[{}, v(s().rpc, 'resends')]]);
    counterOf(r, 'brunet_rpc_failures_total', 'RPC calls that failed (timeout, error reply) and malformed RPC messages', ['reason'],
      () => rows(s().rpc, { timeouts: 'timeout', errors: 'error_reply', malformed: 'malformed' }, 'reason'));
    counterOf(r, 'brunet_dht_operations_total', 'DHT client operations started (repair: re-puts to replicas that missed a value)', ['op'],
      () => rows(s().dht, { puts: 'put', gets: 'get', repairs: 'repair' }, 'op'));
    this.dhtLatency = new Histogram({
      name: 'brunet_dht_operation_seconds', help: 'DHT put and get latency, from the call to the majority answer', labelNames: ['op', 'result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [r],
    });
    for (const d of dhts) d.dht.onDone = (op, ms, ok) => this.dhtLatency.observe({ op, result: ok ? 'ok' : 'fail' }, ms / 1000);
    counterOf(r, 'brunet_secure_handshakes_total', 'Secure-edge handshakes completed', [], () => [[{}, v(s().secure, 'handshakesOk')]]);
    counterOf(r, 'brunet_secure_failures_total', 'Secure-edge failures by reason: handshake failure kinds and dropped session packets', ['reason'], () => {
      const sec = s().secure;
      const hs = Object.keys(sec).filter((k) => k.startsWith('handshakesFailed.')).map((k) => [{ reason: `handshake_${k.slice(17)}` }, sec[k]!] as Sample);
      return [...hs, ...rows(sec, SECURE_SESSION_FAILURES, 'reason')];
    });
    counterOf(r, 'brunet_relay_forwarded_bytes_total', 'Bytes this process relayed for other nodes', [], () => [[{}, v(s().transport.tunnel ?? {}, 'relayedBytes')]]);
    counterOf(r, 'brunet_relay_forwarded_frames_total', 'Frames this process relayed for other nodes', [], () => [[{}, v(s().transport.tunnel ?? {}, 'relayed')]]);
    counterOf(r, 'brunet_relay_drops_total', 'Relay frames dropped, by reason', ['reason'],
      () => rows(s().transport.tunnel ?? {}, { capDrops: 'rate_cap', noRoute: 'no_route', unknownEdge: 'unknown_edge', refused: 'refused' }, 'reason'));
    counterOf(r, 'brunet_udp_fragment_events_total', 'UDP fragmentation and its repairs: messages fragmented, repair requests, fragments resent, messages lost, fragments dropped', ['event'],
      () => rows(s().transport.udp ?? {}, { fragmentedOut: 'fragmented', fragmentRequests: 'repair_request', fragmentsResent: 'resent', fragmentedLost: 'lost', fragmentDrops: 'dropped' }, 'event'));
  }

  /** The exposition text: one fresh snapshot shared by every collect() of this scrape. */
  async render(): Promise<string> {
    this.snap = undefined;
    try { return await this.registry.metrics(); } finally { this.snap = undefined; }
  }

  /** Answers GET /metrics. */
  async serve(res: http.ServerResponse): Promise<void> {
    try {
      const text = await this.render();
      res.writeHead(200, { 'content-type': this.registry.contentType });
      res.end(text);
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`metrics: ${(e as Error).message}\n`);
    }
  }
}
