// A Connection is a linked, realm-checked Edge to a known peer address, with the type the
// two sides agreed on (leaf, structured.near, structured.shortcut, ...).
import type { Address } from '../address/address.js';
import type { Edge, Room } from '../transport/edge.js';
import type { TransportAddress } from '../transport/ta.js';
import type { LiveState } from './liveness.js';
import { sharedNodeInfo, type NodeInfo } from './node-info.js';

export type ConnectionType = 'leaf' | 'structured.near' | 'structured.shortcut' | 'structured.ondemand' | string;

export function isStructured(type: ConnectionType): boolean {
  return type.startsWith('structured');
}

/** Structured types outrank leaf ones: a connection's type is only ever raised. */
export const typeRank = (type: ConnectionType): number => (isStructured(type) ? 1 : 0);

/** What we last told a peer (see Connection.told). */
export interface Told {
  tas: readonly TransportAddress[];
  neighbors: readonly NodeInfo[] | undefined;
  /** @internal A list of our TAs for which `tas` was found to still serve (status-news.ts stillServes); lists are never changed in place. */
  servesFor: readonly TransportAddress[] | undefined;
}

export class Connection {
  /** When any packet last arrived on the edge (keepalive). */
  lastHeard: number;
  /** Nodes the peer reported as nearest to us (its link reply or last Status); used by the near overlord. */
  peerNeighbors: NodeInfo[] = [];
  /** Whether the peer has reported them at all: until then the empty list means "not told yet", not "none". */
  peerNeighborsKnown = false;
  /** The peer's own advertised TAs. */
  peerTAs: NodeInfo['tas'];
  /** Until when relay (tunnel) traffic holds this connection: overlords do not trim it before. */
  relayUntil = 0;
  /** A probe went unanswered (liveness.ts): routing goes around it where another hop makes progress. */
  suspect = false;
  /** @internal Liveness probe state, from the first send on. */
  live?: LiveState;
  /**
   * @internal What we last told the peer (link handshake or Status): our TAs, and the
   * neighbours we reported (undefined: none yet). The link manager skips a Status that
   * would tell it nothing it uses.
   */
  told?: Told;
  /** @internal The liveness hook (set by the link manager): we sent, and were not waiting to hear already. */
  onSent?: (c: Connection) => void;
  private infoCache: NodeInfo | undefined = undefined;
  /** The peerTAs that infoCache was made for. */
  private infoFor: NodeInfo['tas'] | undefined = undefined;
  constructor(
    readonly address: Address,
    readonly edge: Edge,
    public type: ConnectionType,
    /** True if we created it: only the initiator trims its own shortcuts. */
    readonly initiator: boolean,
    readonly createdAt: number,
    peer: NodeInfo,
  ) {
    this.lastHeard = createdAt;
    this.peerTAs = peer.tas;
  }
  get structured(): boolean { return isStructured(this.type); }
  /**
   * The peer as a NodeInfo (its address and advertised TAs): one object while its TAs stay the
   * same, because the neighbour lists we report, and keep as told (status-news.ts), name it;
   * shared with every other NodeInfo of that peer and TA list in the process (node-info.ts).
   */
  get info(): NodeInfo {
    const c = this.infoCache;
    if (c !== undefined && this.infoFor === this.peerTAs) return c;
    this.infoFor = this.peerTAs;
    return (this.infoCache = sharedNodeInfo(this.address, this.peerTAs));
  }
  /** Sends traffic that the peer's silence should make us doubt it (routed and relayed packets). */
  send(p: Uint8Array): void {
    this.edge.send(p);
    this.sent();
  }
  /** send() for a packet lent with room around it (Edge.sendLent); a plain send where the edge cannot. */
  sendLent(p: Uint8Array, room: Room): void {
    if (this.edge.sendLent) this.edge.sendLent(p, room); else this.edge.send(p);
    this.sent();
  }
  private sent(): void {
    if (this.onSent && !this.live?.watching) this.onSent(this);
  }
  /** The peer's report of its nearest nodes around us (a link reply or a Status). */
  reportNeighbors(list: NodeInfo[]): void { this.peerNeighbors = list; this.peerNeighborsKnown = true; }
  /** A forwarder hop of a live tunnel edge: closing it would cut that edge. */
  relayHeld(now: number): boolean { return this.relayUntil > now; }
}
