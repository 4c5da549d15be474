// The Edge/EdgeListener contract every transport implements (UDP, TCP, in-memory, and
// later the secure wrapper and the simulator). Layers above only ever see this file.
import type { Address } from '../address/address.js';
import type { TaKind, TransportAddress } from './ta.js';

/**
 * Free bytes around a packet in its own buffer (same ArrayBuffer): `head` before its first
 * byte and `tail` after its last. Whoever lends a Room with a packet gives away the packet's
 * bytes and that room together (see Edge.sendLent).
 */
export interface Room { readonly head: number; readonly tail: number }

// Buffer ownership on the data path (the rule every Edge follows; docs/architecture.md):
//   send(p)       p is handed over: the edge, and every edge it wraps, may keep p after send
//                 returns (dgram sends asynchronously; UDP keeps a copy of a fragmented
//                 message, up to 1 s, for repair) but never writes into it. The caller must not write into p
//                 again; it may keep reading p and may send the same bytes again.
//   sendLent(p,r) as send, and moreover p and the Room r around it are the edge's to
//                 overwrite (a secure edge seals p where it lies, header in r.head, tag in
//                 r.tail). The caller must not read p or its room again either.
//   onPacket(p)   p belongs to the handler alone; the transport never reads or reuses it.
// So no buffer handed down is ever reused by its sender: a pool may only recycle buffers that
// never reached send (scratch space), or whose edge has said it is done with them.

export interface Edge {
  /** Unique per listener, for logs and maps. */
  readonly id: string;
  readonly kind: TaKind;
  readonly localTA: TransportAddress;
  /** The far end as this node sees it (for NAT learning: the peer's public mapping). */
  readonly remoteTA: TransportAddress;
  /** True for edges the peer created. */
  readonly inbound: boolean;
  /** Set by the secure wrapper: the node address the peer proved it owns. */
  readonly peer?: { readonly address: Address };
  readonly closed: boolean;
  /**
   * Best-effort, unordered on UDP; never throws (a failed send is dropped and counted).
   * The packet is handed over: the edge may keep it, and the caller must not write into it.
   */
  send(packet: Uint8Array): void;
  /**
   * Optional: send() for a packet whose bytes and surrounding room the caller gives away
   * (it never reads them again), so a wrapping edge may write its header and tag around it
   * and transform it in place instead of copying. Callers use send() where this is absent;
   * an edge that finds the room too small sends a copy as send() would.
   */
  sendLent?(packet: Uint8Array, room: Room): void;
  /** Idempotent. Fires onClose once. */
  close(reason?: string): void;
  /**
   * Each received packet goes to this handler alone and then belongs to it: the transport
   * never reads or reuses it afterwards (a wrapping edge may decrypt it in place).
   */
  onPacket: (packet: Uint8Array, edge: Edge) => void;
  onClose: (edge: Edge, reason: string) => void;
}

export interface EdgeListener {
  readonly kind: TaKind;
  /** Resolves once the listener is bound; rejects with a clear message (e.g. port in use). */
  start(): Promise<void>;
  /** Closes every edge and the socket. */
  stop(): Promise<void>;
  /** TAs under which this listener can be reached (after start). */
  localTAs(): TransportAddress[];
  /** Opens an edge to ta. Rejects if the TA is of another kind or unreachable. */
  createEdge(ta: TransportAddress): Promise<Edge>;
  /** Called for every new inbound edge. */
  onEdge: (edge: Edge) => void;
  /** Number of open edges (Information.Info reports it per transport kind). */
  readonly edgeCount: number;
}

/**
 * Resets a listener sends per second at most (udp.ts, and memory.ts as the simulator's model of
 * it): answering packets for unknown edges is rate-limited so spoofed traffic cannot turn a
 * node into a reflector.
 */
export const RESETS_PER_SECOND = 100;

export interface TransportStats {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Datagrams or frames that failed to decode and were dropped. */
  malformed: number;
  sendErrors: number;
}

export function newStats(): TransportStats {
  return { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0, malformed: 0, sendErrors: 0 };
}
