// Greedy ring routing. The next hop is always strictly closer to the destination than
// we are, so a packet cannot loop; the TTL bounds it besides. Leaf connections are only
// used for an exact destination match (a joining node is not yet in the ring). A suspect next
// hop (a probe went unanswered, connection/liveness.ts) is passed over for the next-closest
// connection that still makes progress; with none, the packet takes the suspect hop anyway.
import type { Address } from '../address/address.js';
import type { Connection } from '../connection/connection.js';
import type { ConnectionTable } from '../connection/table.js';
import type { Logger } from '../util/log.js';
import { WireError } from '../wire/value.js';
import type { Room } from '../transport/edge.js';
import { AH_HEADER, bumpHops, decodeAh, encodeAh, encodeAhInRoom, FLAG_EDGE, Mode, type AhHeader } from './ah-wire.js';

/** Connections per side of the destination looked at when the closest one is suspect. */
const AROUND_PER_SIDE = 3;

export type DeliverHandler = (payload: Uint8Array, h: AhHeader, from: Connection | null) => void;

/** sent: packets this node originated; forgedSource: packets from a peer that claim to come from this node (see receive()). */
export interface RouterStats { sent: number; delivered: number; forwarded: number; ttlDrops: number; noRoute: number; malformed: number; noHandler: number; forgedSource: number }

export class Router {
  readonly stats: RouterStats = { sent: 0, delivered: 0, forwarded: 0, ttlDrops: 0, noRoute: 0, malformed: 0, noHandler: 0, forgedSource: 0 };
  private handlers = new Map<number, DeliverHandler>();

  constructor(
    private readonly self: Address,
    private readonly table: ConnectionTable,
    private readonly sizeEstimate: () => number,
    private readonly log: Logger,
  ) {}

  register(ptype: number, h: DeliverHandler): void { this.handlers.set(ptype, h); }

  /** Default TTL: grows with log2 of the estimated size; greedy routes need far fewer hops. */
  defaultTtl(): number {
    return 8 + 4 * Math.ceil(Math.log2(Math.max(2, this.sizeEstimate())));
  }

  /** Originates a routed packet. `via` forces the first hop (joining through a leaf). */
  send(dst: Address, mode: Mode, ptype: number, payload: Uint8Array, via?: Connection): void {
    const h: AhHeader = { mode, flags: 0, hops: 0, ttl: this.defaultTtl(), src: this.self, dst, ptype };
    const pkt = encodeAh(h, payload);
    this.stats.sent++;
    if (via) { bumpHops(pkt, 1); via.send(pkt); this.stats.forwarded++; return; }
    this.route(pkt, h, null);
  }

  /**
   * send() over `via` for a payload whose bytes and surrounding room the caller gives away
   * (Edge.sendLent): the header goes into the room in front of it and the edge may seal it
   * in place. Without room enough it is send() (one copy). True when the header went in place.
   */
  sendLent(dst: Address, mode: Mode, ptype: number, payload: Uint8Array, via: Connection, room: Room): boolean {
    const h: AhHeader = { mode, flags: 0, hops: 1, ttl: this.defaultTtl(), src: this.self, dst, ptype };
    const pkt = encodeAhInRoom(h, payload, room);
    if (!pkt) { this.send(dst, mode, ptype, payload, via); return false; }
    this.stats.sent++;
    this.stats.forwarded++;
    via.sendLent(pkt, { head: room.head - AH_HEADER, tail: room.tail });
    return true;
  }

  /** Sends over one connection only: replies return over the same edge. */
  sendVia(c: Connection, ptype: number, payload: Uint8Array): void {
    const h: AhHeader = { mode: Mode.Exact, flags: FLAG_EDGE, hops: 1, ttl: 1, src: this.self, dst: c.address, ptype };
    this.stats.sent++;
    c.send(encodeAh(h, payload));
  }

  /** A routed packet from a linked peer (the link layer's `routed` event). */
  receive(p: Uint8Array, from: Connection): void {
    let h: AhHeader;
    try { h = decodeAh(p); } catch (e) {
      this.stats.malformed++;
      if (!(e instanceof WireError)) this.log.warn(`routing decode: ${(e as Error).message}`);
      return;
    }
    // A peer never hands us a packet that we originated, save the final copy of our own
    // Closest-mode packet (delivered here, never forwarded): one that claims so is forged.
    // Refusing it means a node forwards only its own packets under its own address, so a
    // receiver whose last hop (authenticated by its secure edge) is the packet's source knows
    // who sent it.
    if (h.src.equals(this.self) && h.mode !== Mode.ClosestFinal) { this.stats.forgedSource++; return; }
    if (h.flags & FLAG_EDGE) return this.deliver(p, h, from);
    this.route(p, h, from);
  }

  private route(p: Uint8Array, h: AhHeader, from: Connection | null): void {
    const dst = h.dst;
    if (dst.equals(this.self) || h.mode === Mode.ClosestFinal) return this.deliver(p, h, from);
    const direct = this.table.get(dst);
    if (direct) return this.forward(p, h, direct);
    const { left, right } = this.table.bracket(dst);
    // The closest of ourselves and the two structured connections bracketing dst.
    let best: Connection | null = null;
    let bestD = this.self.absDistanceTo(dst);
    if (left) { const d = left.address.absDistanceTo(dst); if (d < bestD) { best = left; bestD = d; } }
    if (right) { const d = right.address.absDistanceTo(dst); if (d < bestD) { best = right; bestD = d; } }
    if (best?.suspect) best = this.around(best, dst, this.self.absDistanceTo(dst)) ?? best;
    if (best) return this.forward(p, h, best);
    switch (h.mode) {
      case Mode.Exact: this.stats.noRoute++; return;
      case Mode.Greedy: return this.deliver(p, h, from);
      case Mode.Closest: {
        this.deliver(p, h, from);
        // The other node bracketing dst gets the final copy.
        const n = this.table.neighborsOf(this.self, 1);
        const other = dst.isBetweenFromLeft(this.self, n.left[0]?.address ?? this.self) ? n.left[0] : n.right[0];
        if (other) {
          const copy = p.slice();
          bumpHops(copy, h.hops + 1, Mode.ClosestFinal);
          other.send(copy);
        }
        return;
      }
    }
  }

  /**
   * The closest structured connection to dst, other than the suspect one and no suspect itself,
   * that is still closer than we are (so the route keeps converging), if any.
   */
  private around(suspect: Connection, dst: Address, selfD: bigint): Connection | undefined {
    const { left, right } = this.table.neighborsOf(dst, AROUND_PER_SIDE);
    let best: Connection | undefined;
    let bestD = selfD;
    for (const c of left.concat(right)) {
      if (c === suspect || c.suspect) continue;
      const d = c.address.absDistanceTo(dst);
      if (d < bestD) { best = c; bestD = d; }
    }
    return best;
  }

  private forward(p: Uint8Array, h: AhHeader, to: Connection): void {
    if (h.hops >= h.ttl) { this.stats.ttlDrops++; return; }
    // Originated packets are still ours to mutate; forwarded ones were handed to us.
    bumpHops(p, h.hops + 1);
    this.stats.forwarded++;
    to.send(p);
  }

  private deliver(p: Uint8Array, h: AhHeader, from: Connection | null): void {
    const handler = this.handlers.get(h.ptype);
    if (!handler) { this.stats.noHandler++; return; }
    this.stats.delivered++;
    handler(p.subarray(AH_HEADER), h, from);
  }
}
