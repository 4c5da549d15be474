// The Edge/EdgeListener contract every transport implements (UDP, TCP, in-memory, and
// later the secure wrapper and the simulator). Layers above only ever see this file.
import type { Address } from '../address/address.js';
import type { TaKind, TransportAddress } from './ta.js';

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
  /** Best-effort, unordered on UDP; never throws (a failed send is dropped and counted). */
  send(packet: Uint8Array): void;
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
