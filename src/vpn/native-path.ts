// IpopConfig/NativeFlows: the native fast path for router mode's established flows (see the
// design comment in src/edge/native-flows.ts). A FlowThread becomes the only reader of the
// TAP and of the UDP listener's batched socket; what it does not handle itself reaches the
// callbacks that handle it without it (TapDevice.start's, the socket's, the secure edge's).
//
// A flow is installed for a member IP whose verified owner (the resolver's mapping) is linked
// to us over a direct UDP edge of that listener with an established secure session: the
// session lends its transport state to the flow (SecureEdge.lendTransport), and TypeScript's
// own packets on that edge are sealed and opened by the flow meanwhile. It is removed, the
// state going back to the session (SecureEdge.returnTransport), when the connection, its
// edge, the edge's endpoint or ids or the mapping change, or the edge closes. Checked once a
// second and on every connection table change; each check also feeds the flows' counters
// into the path's stats and OnDemand.note, and keeps the resolver refreshing the mappings
// the flows depend on (TypeScript no longer asks for them per frame).
import type { Address } from '../address/address.js';
import { FlowThread, type FlowStats } from '../edge/native-flows.js';
import { SecureEdge } from '../edge/secure-edge.js';
import type { UdpEdgeListener } from '../transport/udp.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import type { IpopNode } from './group/ipop-node.js';
import type { TapDevice } from './tap.js';

const CHECK_MS = 1000;
/** The routing header's ttl when the router does not say (any value >= 2 passes Router.receive for one hop). */
const FALLBACK_TTL = 16;

interface Installed {
  ip: number; owner: Address; edge: SecureEdge; localId: number; remoteId: number; host: string; port: number;
  last: { sealed: number; sealedBytes: number; frames: number; frameBytes: number };
}

export interface NativePathStats {
  installs: number; removals: number; installed: number;
  /** Install attempts refused by the session (in a rekey's grace period): tried again at the next check. */
  deferred: number;
}

export class NativePath {
  readonly stats: NativePathStats = { installs: 0, removals: 0, installed: 0, deferred: 0 };
  private readonly thread: FlowThread;
  private readonly byIp = new Map<number, Installed>();
  /** Edges that held a flow (by local edge id): plaintexts still queued for them are theirs. */
  private readonly edges = new Map<number, SecureEdge>();
  private timer: TimerHandle | undefined;
  private stopped = false;

  private constructor(
    private readonly vpn: IpopNode, private readonly tap: TapDevice, private readonly udp: UdpEdgeListener,
    private readonly clock: Clock, private readonly log: Logger, private readonly ttl: () => number,
  ) {
    this.thread = new FlowThread(udp.batch!.ipv6);
  }

  /**
   * Starts the thread on the started TAP and the UDP listener's batched socket. Throws a
   * one-line reason when it cannot (no batched UDP listener, addon missing).
   */
  static start(o: { vpn: IpopNode; tap: TapDevice; listeners: readonly unknown[]; clock: Clock; log: Logger; ttl?: () => number }): NativePath {
    const udp = o.listeners.map(unwrapUdp).find((l) => l?.batch !== undefined);
    if (!udp) throw new Error('NativeFlows needs a UDP edge listener with batched I/O (FastPath true and the addon built)');
    const p = new NativePath(o.vpn, o.tap, udp, o.clock, o.log, o.ttl ?? (() => FALLBACK_TTL));
    const stop = () => p.stop();
    const tap = o.tap.lend(stop);
    const sock = udp.batch!.lend(stop);
    const room = o.tap.room;
    p.thread.start({ tapFd: tap.fd, vnet: o.tap.offload, head: room?.head ?? 0, tail: room?.tail ?? 0, udpFd: sock.fd, now: o.clock.now() }, {
      onTap: tap.deliver,
      onUdp: sock.deliver,
      onPlain: (id, pt) => {
        const e = p.edges.get(id);
        if (e && !e.closed) e.receiveOpened(new Uint8Array(pt.buffer, pt.byteOffset, pt.length));
      },
    });
    p.timer = o.clock.setInterval(() => p.check(), CHECK_MS);
    o.vpn.node.table.onChange(() => p.check());
    return p;
  }

  /** For status: the thread's counters and the flows'. */
  summary(): Record<string, number> {
    const sum = { rekeys: 0, confirms: 0, decryptFailures: 0, replays: 0, badEpoch: 0 };
    for (const f of this.byIp.values()) {
      const s = this.thread.stats(f.localId);
      if (s) for (const k of Object.keys(sum) as Array<keyof typeof sum>) sum[k] += s[k] ?? 0;
    }
    return { ...this.thread.counters, ...this.stats, installed: this.byIp.size, ...sum };
  }

  /** Stops the thread and hands every flow's state back. Idempotent; called before the TAP or socket closes. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.timer?.cancel();
    this.thread.stop();
    for (const f of [...this.byIp.values()]) this.remove(f);
  }

  /** Removes flows that no longer hold, installs the ones that now do, and feeds the counters. */
  check(): void {
    if (this.stopped) return;
    for (const f of [...this.byIp.values()]) {
      if (!this.valid(f)) this.remove(f);
      else this.feed(f);
    }
    for (const [id, e] of this.edges) if (e.closed) this.edges.delete(id);
    for (const { ip, owner } of this.vpn.resolver.known(Number.MAX_SAFE_INTEGER)) {
      if (!this.byIp.has(ip)) this.tryInstall(ip, owner);
    }
    this.stats.installed = this.byIp.size;
  }

  /** The edge's UDP ids and endpoint, when it is a live direct UDP edge of our listener with a known peer id. */
  private direct(owner: Address): { edge: SecureEdge; localId: number; remoteId: number; host: string; port: number } | undefined {
    const c = this.vpn.node.table.get(owner);
    const edge = c?.edge;
    if (!(edge instanceof SecureEdge) || !edge.established || edge.closed) return undefined;
    const ids = this.udp.edgeIds(edge.inner);
    if (!ids || ids.remoteId === 0) return undefined;
    return { edge, ...ids, host: edge.inner.remoteTA.host, port: edge.inner.remoteTA.port };
  }

  private valid(f: Installed): boolean {
    // get() (not peek) keeps the mapping refreshed in the background while the flow carries its traffic.
    const owner = this.vpn.resolver.get(f.ip);
    const d = owner && owner.equals(f.owner) ? this.direct(owner) : undefined;
    return d !== undefined && d.edge === f.edge && d.localId === f.localId && d.remoteId === f.remoteId && d.host === f.host && d.port === f.port;
  }

  private tryInstall(ip: number, owner: Address): void {
    const d = this.direct(owner);
    if (!d || [...this.byIp.values()].some((f) => f.edge === d.edge)) return;  // one flow per edge
    const thread = this.thread, clock = this.clock, id = d.localId;
    const state = d.edge.lendTransport({
      seal: (type, pt) => thread.sealTransport(id, type, pt, clock.now()),
      open: (p) => thread.openTransport(id, p, clock.now()),
    });
    if (!state) { this.stats.deferred++; return; }
    try {
      thread.install({
        ...state, localEdgeId: d.localId, remoteEdgeId: d.remoteId, self: this.vpn.node.address.bytes, peer: owner.bytes, ttl: this.ttl(),
        localIp: this.vpn.ip, peerIp: ip, tapMac: this.tap.mac, gatewayMac: this.vpn.gatewayMac,
      }, d.host, d.port);
    } catch (e) {
      d.edge.returnTransport(undefined);  // nothing was installed: the session still holds its state
      this.log.warn(`native flow for ${owner.key}: ${(e as Error).message}`);
      return;
    }
    const f: Installed = { ip, owner, ...d, last: { sealed: 0, sealedBytes: 0, frames: 0, frameBytes: 0 } };
    this.byIp.set(ip, f);
    this.edges.set(d.localId, d.edge);
    this.stats.installs++;
  }

  private remove(f: Installed): void {
    this.byIp.delete(f.ip);
    const st = this.thread.take(f.localId);
    if (st) this.account(f, st.stats);
    f.edge.returnTransport(st);
    this.stats.removals++;
  }

  private feed(f: Installed): void {
    const s = this.thread.stats(f.localId);
    if (s) this.account(f, s);
  }

  /** What the flow did since the last look, into the path's stats and OnDemand. */
  private account(f: Installed, s: FlowStats): void {
    const d = {
      sealed: s.sealed - f.last.sealed, sealedBytes: (s.sealedBytes ?? 0) - f.last.sealedBytes,
      frames: s.frames - f.last.frames, frameBytes: (s.frameBytes ?? 0) - f.last.frameBytes,
    };
    f.last = { sealed: s.sealed, sealedBytes: s.sealedBytes ?? 0, frames: s.frames, frameBytes: s.frameBytes ?? 0 };
    const st = this.vpn.stats;
    st.txFrames += d.sealed; st.txBytes += d.sealedBytes;
    st.rxFrames += d.frames; st.rxBytes += d.frameBytes;
    if (d.sealedBytes + d.frameBytes > 0) this.vpn.onDemand.note(f.owner, d.sealedBytes + d.frameBytes);
  }
}

/** The UDP listener inside a listener (a SecureEdgeListener wraps one as `inner`). */
function unwrapUdp(l: unknown): UdpEdgeListener | undefined {
  let x = l as { inner?: unknown; batch?: unknown; edgeIds?: unknown; kind?: string } | undefined;
  for (let i = 0; i < 4 && x; i++) {
    if (x.kind === 'udp' && typeof x.edgeIds === 'function') return x as unknown as UdpEdgeListener;
    x = x.inner as typeof x;
  }
  return undefined;
}
