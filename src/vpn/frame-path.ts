// The data-path plumbing both VPN modes share (router mode in group/, switch mode in switch/):
// a message goes to a member only over a connection to it (opened on demand, the message held
// meanwhile), arrives only over the connection to its sender, and frames reach the TAP in
// batches, with or without their offload header.
//
// Buffers: send() does not keep `data` unless it must wait for a link (then it copies it);
// with a `room` (a TAP frame the caller gives away, IpopConfig/FastPath) the routing header
// and the secure edge's header and tag are written around `data` and it is sealed where it
// lies, so the caller must not read it again. Frames handed to writeTap() belong to the path
// until the batch is written.
import type { Address } from '../address/address.js';
import type { Connection } from '../connection/connection.js';
import type { ConnectionTable } from '../connection/table.js';
import type { TunnelEdgeListener } from '../connection/tunnel.js';
import type { RpcManager } from '../rpc/rpc-manager.js';
import type { Router } from '../routing/router.js';
import type { EdgeListener, Room } from '../transport/edge.js';
import { AH_HEADER } from '../routing/ah-wire.js';
import { DATA_HEADER } from '../edge/secure-wire.js';
import { AEAD_TAG_LEN } from '../edge/aead.js';
import { Mode, Payload, type AhHeader } from '../routing/ah-wire.js';
import type { Clock } from '../util/clock.js';
import { decodeOffloadHeader, OFFLOAD_HEADER, OffloadError, segment, wireToVnet, type OffloadMeta } from './offload.js';
import type { OnDemand, OnDemandComponents } from './on-demand.js';

/** What a TAP gives the VPN (the native device, or an in-memory one in tests). */
export interface FrameDevice {
  readonly mac: Uint8Array;
  /** Gives and takes frames after a kernel virtio_net_hdr (see TapDevice); absent: plain frames only. */
  readonly offload?: boolean;
  /**
   * Free bytes around every frame start() delivers, for headers and a tag written in place
   * (IpopConfig/FastPath); absent: none. The frames and their room are the callback's.
   */
  readonly room?: Room;
  /** offloaded[i] === 1: frames[i] starts with a kernel virtio_net_hdr. */
  start(onFrames: (frames: Uint8Array[], offloaded?: Uint8Array | null) => void): void;
  writeBatch(frames: Uint8Array[], withHeader?: boolean): number;
  close(): void;
}

/** The counters the path keeps (a mode's stats object includes them). */
export interface FramePathStats {
  txFrames: number; txBytes: number; txOffload: number; rxOffload: number; queued: number; softwareSegments: number;
  /** Sent with their headers written into the TAP's room (IpopConfig/FastPath), not copied. */
  txInPlace: number;
  /** Waiting queue full; no link to the owner in time; a malformed offload header. */
  dropQueueFull: number; dropNoLink: number; dropBadOffload: number;
  /** Routed over other nodes instead of a connection to its sender: a routed packet's source is not authenticated. */
  dropNotDirect: number;
}

export const newFramePathStats = (): FramePathStats => ({
  txFrames: 0, txBytes: 0, txOffload: 0, rxOffload: 0, queued: 0, softwareSegments: 0, txInPlace: 0,
  dropQueueFull: 0, dropNoLink: 0, dropBadOffload: 0, dropNotDirect: 0,
});

/**
 * What a VPN mode uses of its overlay node (a Node is one): on-demand links, the router, the
 * connection table; and what get_state and `groupvpn status` read through it (RPC pings,
 * relay forwarders, the listeners' counters).
 */
export interface VpnNodeComponents extends OnDemandComponents {
  table: Pick<ConnectionTable, 'get' | 'neighborsOf' | 'onChange'>;
  router: Pick<Router, 'register' | 'send' | 'sendLent'>;
  rpc: Pick<RpcManager, 'call'>;
  tunnel?: Pick<TunnelEdgeListener, 'forwardersFor'>;
  listeners: readonly EdgeListener[];
}

export interface FramePathComponents {
  table: Pick<ConnectionTable, 'get' | 'onChange'>;
  router: Pick<Router, 'register' | 'send' | 'sendLent'>;
  clock: Clock;
}

/** A message as it crosses the overlay: a frame, or offload header + frame. */
export interface Outgoing { data: Uint8Array; ptype: Payload }

/** A frame that arrived over the connection to its sender; meta: it came with an offload header, just before it in the same buffer. */
export type FrameHandler = (frame: Uint8Array, from: Address, meta: OffloadMeta | undefined) => void;

/**
 * The room a TAP leaves around each frame with IpopConfig/FastPath: the routing header and
 * the secure edge's header in front (64 ≥ 49 + 10), its tag behind. A relay edge adds its
 * own header by copying, as without room.
 */
export const FRAME_ROOM: Room = { head: 64, tail: AEAD_TAG_LEN };
if (FRAME_ROOM.head < AH_HEADER + DATA_HEADER) throw new Error('FRAME_ROOM too small');

export const QUEUE_PER_DESTINATION = 64;
/** How long frames wait for a connection (direct or relay edge) to their owner. */
export const LINK_WAIT_MS = 5000;

interface LinkWait { owner: Address; at: number; out: Outgoing[] }

export class FramePath {
  private linkWaits = new Map<string, LinkWait>();
  private toTap: Uint8Array[] = [];
  /** Parallel to toTap: 1 where the entry starts with a kernel virtio_net_hdr. */
  private toTapHeader: number[] = [];
  private flushScheduled = false;
  stopped = false;

  constructor(
    private readonly c: FramePathComponents,
    private readonly device: FrameDevice,
    private readonly onDemand: OnDemand,
    readonly stats: FramePathStats,
  ) {
    c.table.onChange((ev, conn) => {
      if (ev === 'add' && this.linkWaits.has(conn.address.key)) queueMicrotask(() => this.linkUp(conn.address));
    });
  }

  /**
   * Receives payload types `plain` and `offloaded` (the same after an offload header; none for a mode without offload): only
   * over the connection to their source, since only the last hop is authenticated (the
   * address it proved on its secure edge).
   */
  register(plain: Payload, offloaded: Payload | undefined, handler: FrameHandler): void {
    const direct = (h: AhHeader, from: Connection | null): boolean => {
      if (!this.stopped && from && from.address.equals(h.src)) return true;
      this.stats.dropNotDirect++;
      return false;
    };
    this.c.router.register(plain, (p, h, from) => { if (direct(h, from)) handler(p, h.src, undefined); });
    if (offloaded === undefined) return;
    this.c.router.register(offloaded, (p, h, from) => {
      if (!direct(h, from)) return;
      let meta: OffloadMeta;
      try { meta = decodeOffloadHeader(p, 0, p.length - OFFLOAD_HEADER); } catch (e) {
        if (!(e instanceof OffloadError)) throw e;
        this.stats.dropBadOffload++;
        return;
      }
      handler(p.subarray(OFFLOAD_HEADER), h.src, meta);
    });
  }

  /**
   * Messages go only over a connection to their owner (direct, or a relay edge secured end
   * to end), never routed over other nodes: receivers refuse routed frames (register). Without
   * a connection yet, one is opened and the message waits for it (copied, bounded, LINK_WAIT_MS).
   */
  send(owner: Address, data: Uint8Array, ptype: Payload, room?: Room): void {
    const conn = this.c.table.get(owner);
    if (!conn) { this.holdForLink(owner, data, ptype); return; }
    this.stats.txFrames++;
    this.stats.txBytes += data.length;
    if (ptype === Payload.IpOffload || ptype === Payload.EthernetOffload || ptype === Payload.SocialIpOffload) this.stats.txOffload++;
    this.onDemand.note(owner, data.length);
    // Straight over that connection: the router need not look the route up again.
    if (room) { if (this.c.router.sendLent(owner, Mode.Exact, ptype, data, conn, room)) this.stats.txInPlace++; }
    else this.c.router.send(owner, Mode.Exact, ptype, data, conn);
  }

  private holdForLink(owner: Address, data: Uint8Array, ptype: Payload): void {
    let w = this.linkWaits.get(owner.key);
    if (!w) { w = { owner, at: this.c.clock.now(), out: [] }; this.linkWaits.set(owner.key, w); }
    if (w.out.length >= QUEUE_PER_DESTINATION) { this.stats.dropQueueFull++; return; }
    w.out.push({ data: new Uint8Array(data), ptype });
    this.stats.queued++;
    this.onDemand.connectNow(owner);
  }

  private linkUp(address: Address): void {
    const w = this.linkWaits.get(address.key);
    if (!w || this.stopped || !this.c.table.get(address)) return;
    this.linkWaits.delete(address.key);
    for (const x of w.out) this.send(w.owner, x.data, x.ptype);
  }

  /** Drops what waited for a link longer than LINK_WAIT_MS (called every second). */
  expire(): void {
    const now = this.c.clock.now();
    for (const [key, w] of this.linkWaits) {
      if (now - w.at < LINK_WAIT_MS) continue;
      this.linkWaits.delete(key);
      this.stats.dropNoLink += w.out.length;
    }
  }

  /** An offloaded frame: the device takes it with its header; otherwise it is cut or checksummed here. */
  writeOffloaded(frame: Uint8Array, meta: OffloadMeta): void {
    this.stats.rxOffload++;
    if (this.device.offload) {
      const whole = new Uint8Array(frame.buffer, frame.byteOffset - OFFLOAD_HEADER, frame.length + OFFLOAD_HEADER);
      wireToVnet(whole, 0);
      this.writeTap(whole, 1);
      return;
    }
    let frames: Uint8Array[];
    try { frames = segment(meta, frame); } catch (e) {
      if (!(e instanceof OffloadError)) throw e;
      this.stats.dropBadOffload++;
      return;
    }
    this.stats.softwareSegments += frames.length;
    for (const f of frames) this.writeTap(f);
  }

  /** Frames arriving in one turn of the event loop go to the TAP in as few native calls as their kinds allow. */
  writeTap(f: Uint8Array, withHeader = 0): void {
    this.toTap.push(f);
    this.toTapHeader.push(withHeader);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      const batch = this.toTap, kinds = this.toTapHeader;
      this.toTap = [];
      this.toTapHeader = [];
      if (this.stopped) return;
      // Runs of one kind keep the frames' order.
      for (let i = 0; i < batch.length;) {
        let j = i + 1;
        while (j < batch.length && kinds[j] === kinds[i]) j++;
        this.device.writeBatch(i === 0 && j === batch.length ? batch : batch.slice(i, j), kinds[i] === 1);
        i = j;
      }
    });
  }
}
