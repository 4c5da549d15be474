// Packets by message type, for comparing the simulator's traffic with bench:ring's (issue 16's
// validation): an edge packet is named by its PType and the type inside it: link.<message>
// (link-wire.ts CODES; a close with its reason), routed.<mode>.rpc.<method> for requests, routed.<mode>.rpc.reply /
// .error, routed.<mode>.p<payload type> otherwise, relay; a UDP datagram that carries no edge
// packet is udp.<close|reset|fragment|request>. Counting decodes the RPC body of every routed
// request, so it is switched on only for these measurements.
import { CODES, decodeLink, PTYPE_LINK, PTYPE_RELAY, PTYPE_ROUTED } from '../../src/connection/link-wire.js';
import { AH_HEADER } from '../../src/routing/ah-wire.js';
import { decodeRpc, RpcKind } from '../../src/rpc/rpc-wire.js';
import { MemoryNetwork } from '../../src/transport/memory.js';
import { T_DATA, UdpEdgeListener } from '../../src/transport/udp.js';

const MODES: Record<number, string> = { 0: 'closest', 3: 'greedy', 5: 'exact', 6: 'closestfinal' };
const UDP_TYPES = ['data', 'close', 'reset', 'fragment', 'request'];

/** The message type of one edge packet (never throws). */
export function msgType(p: Uint8Array): string {
  switch (p[0]) {
    case PTYPE_LINK: {
      const type = `link.${CODES[p[2]!] ?? p[2]}`;
      if (type !== 'link.close') return type;
      try { const m = decodeLink(p); return m.t === 'close' ? `${type}.${m.reason.split(':')[0]}` : type; } catch { return `${type}.malformed`; }
    }
    case PTYPE_RELAY: return 'relay';
    case PTYPE_ROUTED: {
      const route = `routed.${MODES[p[2]!] ?? p[2]}`;
      if (p.length <= AH_HEADER || p[48] !== 1) return `${route}.p${p[48]}`;
      try {
        const m = decodeRpc(p.subarray(AH_HEADER));
        return m.kind === RpcKind.Request ? `${route}.rpc.${m.method}` : `${route}.rpc.${m.kind === RpcKind.Reply ? 'reply' : 'error'}`;
      } catch { return `${route}.rpc.malformed`; }
    }
    default: return `ptype${p[0]}`;
  }
}

/** Counts of packets sent, by type. */
export class MsgCounts {
  readonly counts = new Map<string, number>();
  add(type: string): void { this.counts.set(type, (this.counts.get(type) ?? 0) + 1); }
  /** Sorted by count, largest first. */
  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.counts].sort((a, b) => b[1] - a[1]));
  }
}

/** Counts every edge packet sent on this simulated network (its interceptor, passing everything). */
export function countMemory(net: MemoryNetwork, into: MsgCounts): void {
  if (net.intercept) throw new Error('msg-types: the network already has an interceptor');
  net.intercept = (p) => { into.add(msgType(p)); return 'pass'; };
  net.onControl = (kind) => { into.add(`udp.${kind}`); }; // named as countUdp names UDP's
}

/**
 * Counts every datagram that UdpEdgeListeners send, from now on, in this process (wraps the
 * private transmit of the class: a benchmark's instrument, not for production).
 */
export function countUdp(into: MsgCounts): void {
  type Transmit = (to: unknown, head: Buffer, payload?: Uint8Array) => void;
  const proto = UdpEdgeListener.prototype as unknown as { transmit: Transmit };
  const orig = proto.transmit;
  proto.transmit = function (this: unknown, to, head, payload) {
    into.add(head[1] === T_DATA && payload ? msgType(payload) : `udp.${UDP_TYPES[head[1]!] ?? head[1]}`);
    orig.call(this, to, head, payload);
  };
}

/**
 * A markdown table of packets by type, mean over runs: the ring's column, then each
 * simulator mode's with its ratio to the ring; types under 1 % of every column go into "other".
 */
export function typesTable(ring: Record<string, number>[], sims: [string, Record<string, number>[]][]): string {
  const meanOf = (runs: Record<string, number>[], k: string) => runs.reduce((s, r) => s + (r[k] ?? 0), 0) / Math.max(1, runs.length);
  const cols = [ring, ...sims.map(([, v]) => v)];
  const totals = cols.map((c) => c.reduce((s, r) => s + Object.values(r).reduce((x, y) => x + y, 0), 0) / Math.max(1, c.length));
  const keys = [...new Set(cols.flatMap((c) => c.flatMap((r) => Object.keys(r))))];
  const big = keys.filter((k) => cols.some((c, i) => meanOf(c, k) >= 0.01 * totals[i]!)).sort((a, b) => meanOf(ring, b) - meanOf(ring, a));
  const rows = [...big.map((k) => [k, cols.map((c) => meanOf(c, k))] as const),
    ['other', cols.map((c, i) => totals[i]! - big.reduce((s, k) => s + meanOf(c, k), 0))] as const,
    ['total', totals] as const];
  const fmt = (x: number) => String(Math.round(x));
  const ratio = (x: number, r: number) => (r > 0 ? (x / r).toFixed(2) : '-');
  return [
    `| packets until consistency, by type (mean) | ring | ${sims.map(([n]) => `${n} | ${n} / ring`).join(' | ')} |`,
    `| --- | --- | ${sims.map(() => '--- | ---').join(' | ')} |`,
    ...rows.map(([k, v]) => `| ${k} | ${fmt(v[0]!)} | ${v.slice(1).map((x) => `${fmt(x)} | ${ratio(x, v[0]!)}`).join(' | ')} |`),
  ].join('\n');
}
