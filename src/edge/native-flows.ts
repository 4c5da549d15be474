// The native flow table (native/flow*.cc): established VPN flows whose datagrams native code
// seals and opens with the very bytes the TypeScript path writes (UDP data header, secure
// DATA header, AH header, frame, tag), so a member with native flows and one without talk
// to each other unchanged. Installing a flow hands it the session's transport state (keys,
// epochs, send counter, replay window): while installed, the flow alone advances it.
//
// open() verdicts: Frame, an authenticated unicast IPv4 frame from the peer's address to
// ours, its MACs rewritten for our TAP; Plaintext, authenticated but anything else (overlay
// messages, offloaded frames, multicast): the secure edge's plaintext for TypeScript;
// NotMine, no DATA packet of an installed flow's edge: the datagram for TypeScript, unchanged;
// Drop, refused and counted as Session.open counts it. open() decrypts in place.
//
// NativeFlowTable: the tests, the fuzz target and bench:vpn's floor-flow path. FlowThread
// (native/flow-thread.cc): the daemon's, with IpopConfig/NativeFlows (src/vpn/native-path.ts):
//  - a native thread becomes the only reader of the TAP fd and the UDP listener's socket;
//    frames a flow takes are sealed and sent there, datagrams a flow opens as Frame are
//    written to the TAP there; everything else (other frames, Plaintext with its edge id,
//    NotMine datagrams with their source) goes through a bounded queue and one uv_async to
//    the callbacks that get it today (TapDevice.start, the batch socket, SecureEdge);
//  - installing moves the Session's transport state into the flow, removing it hands it back;
//    meanwhile TypeScript seals on that edge through the flow (one counter, one window);
//  - installed for a member linked over a direct UDP edge whose IP the resolver maps to it;
//    removed when the connection, edge endpoint or mapping changes; its counters feed the
//    path's stats and OnDemand.note once a second. Super-packets, offloaded frames, ARP, DHCP,
//    multicast and IPv6 stay TypeScript's.
import { loadAddonModule } from '../util/addon.js';
import type { ReturnedState } from './session.js';

export const enum FlowVerdict { Frame = 0, Plaintext = 1, NotMine = 2, Drop = 3 }

/** UDP (10) + DATA (10) + AH (49) headers and the tag: what a flow adds to a frame. */
export const FLOW_OVERHEAD = 10 + 10 + 49 + 16;
/** The largest frame a flow sends in one datagram (MAX_DATAGRAM 1452 less its overhead); larger ones stay TypeScript's. */
export const FLOW_MAX_FRAME = 1452 - FLOW_OVERHEAD;

export interface FlowSpec {
  /** The UDP edge's ids: ours (the receiver id of arriving datagrams) and the peer's. */
  localEdgeId: number; remoteEdgeId: number;
  /** The session's transport state (session.ts): current keys, epochs and send counter, and when the send epoch began. */
  sendKey: Uint8Array; recvKey: Uint8Array; sendEpoch: number; recvEpoch: number; sendCounter: number; sendEpochStart: number;
  rekeyPackets: number; rekeyMs: number; graceMs: number;
  /** The current receive epoch's replay window (ReplayWindow.snapshot); absent: nothing seen yet. */
  recvWindow?: { top: number; bits: Uint32Array };
  /** Overlay addresses (20 bytes) and the routing header's ttl, as Router.sendLent writes it. */
  self: Uint8Array; peer: Uint8Array; ttl: number;
  /** Virtual IPv4 addresses (u32): ours and the peer's; the TAP's MAC and the gateway MAC frames get on arrival. */
  localIp: number; peerIp: number; tapMac: Uint8Array; gatewayMac: Uint8Array;
}

export interface FlowStats {
  sealed: number; opened: number; frames: number; plaintexts: number;
  decryptFailures: number; replays: number; tooOld: number; badEpoch: number; malformed: number; rekeys: number;
  sendEpoch: number; sendCounter: number;
  /** FlowThread's flows only: authenticated CONFIRMs, frame bytes delivered to the TAP and sealed. */
  confirms?: number; frameBytes?: number; sealedBytes?: number;
}

/** The I/O thread's counters (native/flow-thread.cc). */
export interface FlowThreadCounters {
  tapReads: number; tapSealed: number; udpReads: number; tapWrites: number; toJs: number; queueDrops: number; sendErrors: number; tapWriteErrors: number;
}

/** What the thread hands to JS: TAP reads as tap.cc delivers them, datagrams as udp.cc does, and plaintexts of installed flows' edges. */
export interface FlowThreadCallbacks {
  onTap(err: Error | null, data?: Buffer, lengths?: Uint32Array): void;
  onUdp(data: Buffer, meta: Uint32Array, count: number, hosts: string[]): void;
  onPlain(localEdgeId: number, plaintext: Buffer): void;
}

interface NativeThread {
  install(spec: FlowSpec, host: string, port: number): void;
  take(localEdgeId: number): (ReturnedState & { stats: FlowStats }) | undefined;
  sealTransport(localEdgeId: number, type: number, plaintext: Uint8Array, now: number): Buffer | null;
  openTransport(localEdgeId: number, packet: Uint8Array, now: number): Buffer | null;
  stats(localEdgeId: number): FlowStats | undefined;
  start(tapFd: number, vnet: boolean, head: number, tail: number, udpFd: number, now: number,
    onTap: FlowThreadCallbacks['onTap'], onUdp: FlowThreadCallbacks['onUdp'], onPlain: FlowThreadCallbacks['onPlain']): void;
  stop(): void;
  counters(): FlowThreadCounters;
}

interface NativeTable {
  install(spec: FlowSpec): void;
  remove(localEdgeId: number): boolean;
  seal(peerIp: number, frame: Uint8Array, now: number): Buffer | null;
  open(datagram: Uint8Array, now: number): [FlowVerdict, Buffer?];
  stats(localEdgeId: number): FlowStats | undefined;
}

let ctor: (new () => NativeTable) | Error | undefined;
let threadCtor: (new (ipv6: boolean) => NativeThread) | undefined;

function load(): (new () => NativeTable) | Error {
  if (ctor !== undefined) return ctor;
  try {
    const mod = loadAddonModule() as { FlowTable?: new () => NativeTable; FlowThread?: new (ipv6: boolean) => NativeThread };
    if (typeof mod.FlowTable !== 'function' || typeof mod.FlowThread !== 'function') throw new Error('the addon has no FlowTable or FlowThread: rebuild it (npx node-gyp rebuild)');
    ctor = mod.FlowTable;
    threadCtor = mod.FlowThread;
  } catch (e) {
    ctor = e instanceof Error ? e : new Error(String(e));
  }
  return ctor;
}

/** null when native flows can be used here, else a one-line reason. */
export function nativeFlowsUnavailableReason(): string | null {
  const c = load();
  return c instanceof Error ? c.message : null;
}

export class NativeFlowTable {
  readonly #h: NativeTable;

  constructor() {
    const c = load();
    if (c instanceof Error) throw c;
    this.#h = new c();
  }

  /** Installs (or replaces) the flow of spec.localEdgeId / spec.peerIp; the spec's keys are copied. */
  install(spec: FlowSpec): void { this.#h.install(spec); }
  remove(localEdgeId: number): boolean { return this.#h.remove(localEdgeId); }
  /** The datagram for frame (a new Buffer), or null when no flow takes it (not ours to send natively). */
  seal(peerIp: number, frame: Uint8Array, now: number): Buffer | null { return this.#h.seal(peerIp, frame, now); }
  /** Takes a received datagram apart, decrypting it in place: the verdict and, for Frame and Plaintext, a copy of those bytes. */
  open(datagram: Uint8Array, now: number): { verdict: FlowVerdict; data?: Buffer } {
    const [verdict, data] = this.#h.open(datagram, now);
    return { verdict, data };
  }
  stats(localEdgeId: number): FlowStats | undefined { return this.#h.stats(localEdgeId); }
}

/**
 * The native fast path's I/O thread and its flow table (native/flow-thread.cc). The table may
 * be used before start(); after stop() the thread is gone (the table stays usable).
 */
export class FlowThread {
  readonly #h: NativeThread;

  /** ipv6: the UDP socket is AF_INET6. Throws when the addon is missing (nativeFlowsUnavailableReason). */
  constructor(ipv6: boolean) {
    const c = load();
    if (c instanceof Error) throw c;
    this.#h = new threadCtor!(ipv6);
  }

  /** Installs (or replaces) the flow of spec.localEdgeId / spec.peerIp, sending to host:port (an IP address). */
  install(spec: FlowSpec, host: string, port: number): void { this.#h.install(spec, host, port); }
  /** Removes the flow and returns its transport state (for Session.restoreTransportState) and last stats. */
  take(localEdgeId: number): (ReturnedState & { stats: FlowStats }) | undefined { return this.#h.take(localEdgeId); }
  /** A secure-edge transport packet (DATA header, sealed plaintext, tag) on the flow's counter; null without the flow. */
  sealTransport(localEdgeId: number, type: number, plaintext: Uint8Array, now: number): Buffer | null { return this.#h.sealTransport(localEdgeId, type, plaintext, now); }
  /** Opens a transport packet with the flow's keys and windows (the caller's bytes stay); null when refused or without the flow. */
  openTransport(localEdgeId: number, packet: Uint8Array, now: number): Buffer | null { return this.#h.openTransport(localEdgeId, packet, now); }
  stats(localEdgeId: number): FlowStats | undefined { return this.#h.stats(localEdgeId); }
  get counters(): FlowThreadCounters { return this.#h.counters(); }

  /** Starts reading tapFd (with a virtio header when vnet; delivered with head/tail room) and udpFd; now: the JS clock's reading. */
  start(o: { tapFd: number; vnet: boolean; head: number; tail: number; udpFd: number; now: number }, cb: FlowThreadCallbacks): void {
    this.#h.start(o.tapFd, o.vnet, o.head, o.tail, o.udpFd, o.now, cb.onTap, cb.onUdp, cb.onPlain);
  }
  /** Stops and joins the thread; the fds are not touched again. Idempotent. */
  stop(): void { this.#h.stop(); }
}
