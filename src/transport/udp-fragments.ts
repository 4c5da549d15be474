// Overlay-level fragmentation for UDP edges (datagram types 3 and 4 in udp.ts). A message
// larger than one datagram that fits a 1500-byte path (a VPN's 64 KB TCP super-packet, a
// large DHT value) is cut into fragments here rather than left to IP fragmentation, which
// NATs and firewalls often drop and which the kernel reassembles with no bound we control.
//
// Losing one fragment would lose the whole message: at 1 % datagram loss a 46-fragment
// super-packet is lost 37 % of the time, which TCP inside the VPN cannot survive. So the
// receiver asks for missing fragments (type 4) and the sender, which keeps its last few
// fragmented messages for a moment, sends them again: a link-layer repair that costs one
// round trip, far below what TCP's own recovery would cost. Messages are handed on in the
// order they were sent: one that completes while an older one awaits repair is held (a
// bounded time and amount), as TCP inside would take a reordering for a loss.
//
// Fragment (type 3), after the common 10 bytes (big-endian):
//   bytes 10..13  message id (u32, per edge, incrementing)
//   bytes 14..15  fragment index (u16)
//   bytes 16..17  fragment count (u16, >= 2)
//   bytes 18..    data: FRAGMENT_PAYLOAD bytes in every fragment but the last
// Request (type 4): message id (u32), fragment count (u16), then a bitmap of the missing
// indices (bit i of byte i >> 3, most significant first), ceil(count / 8) bytes.

import { transientBytes } from '../util/gc-pacer.js';

/** Common header (10) + fragment fields (8). */
export const FRAGMENT_HEADER = 18;
/** The largest datagram we send: fits a 1500-byte path over IPv6 (40) + UDP (8). */
export const MAX_DATAGRAM = 1500 - 48;
export const FRAGMENT_PAYLOAD = MAX_DATAGRAM - FRAGMENT_HEADER;
/** Largest message an edge carries: a 64 KB super-packet with overlay headers, even relayed twice. */
export const MAX_MESSAGE = 256 * 1024;
export const MAX_FRAGMENTS = Math.ceil(MAX_MESSAGE / FRAGMENT_PAYLOAD);
/** A request's common header (10), message id and fragment count, before the bitmap. */
export const REQUEST_FIXED = 16;
/** An incomplete message older than this is given up. */
const GIVE_UP_MS = 2000;
/**
 * Messages under reassembly per edge; the oldest goes when a newer one needs the slot. A
 * repair can take as long as the receive queue is deep (4 MB is 60 super-packets), and
 * at 1 % loss a third of the messages in that time await one.
 */
const IN_PROGRESS = 64;
/** Complete messages held behind one under repair, per edge (and within the listener budget), before that one is given up. */
const MAX_HELD_BYTES = 16 << 20;
/** Requests per message, and the wait before asking again or, for the newest, at all. */
const MAX_REQUESTS = 3;
const REQUEST_AGAIN_MS = 20;
const TAIL_QUIET_MS = 10;
/**
 * What a sender keeps for repairs: its last messages, up to this many bytes per edge (about
 * a bandwidth-delay product: 8 MB is 50 ms at 1.3 Gbit/s) and for this long.
 */
const KEEP_BYTES = 8 << 20;
/** The smallest ring of kept messages: two of the largest. */
const RING_MIN = 2 * MAX_MESSAGE;
export const KEEP_MS = 1000;
const MAX_RESENDS = 3;

/** Memory held by incomplete and retained messages, shared by all edges of one listener. */
export class FragmentBudget {
  used = 0;
  constructor(readonly limit = 64 << 20) {}
}

/** Why a fragment was not used; counted by the listener. */
export type FragmentDrop = 'malformed' | 'stale' | 'budget';

interface Partial {
  id: number;
  count: number;
  got: number;
  seen: Uint8Array;
  buf: Buffer;
  size: number;
  first: number;
  last: number;
  requests: number;
  requestedAt: number;
}

const newer = (a: number, b: number) => a !== b && ((a - b) >>> 0) < 0x80000000;

/**
 * One edge's messages under reassembly (receiver side), and the requests for their
 * missing fragments. Fragments of one edge are sent message after message, so a fragment
 * of a newer message means an older incomplete one has lost some.
 */
export class Reassembly {
  /** Incomplete messages, oldest first. */
  private readonly partials: Partial[] = [];
  /** Complete messages waiting for an older one, oldest first. */
  private readonly held: Array<{ id: number; msg: Uint8Array }> = [];
  private heldBytes = 0;
  private newest = -1;
  private readonly done: number[] = [];
  /** Set when a message starts while an older one is incomplete: requests() has work. */
  due = false;

  /**
   * deliver: whole messages, in the order they were sent. onLost: a message was given up
   * (incomplete after every request, evicted, too old, or holding up too much).
   */
  constructor(private readonly budget: FragmentBudget, private readonly deliver: (m: Uint8Array) => void, private readonly onLost: () => void = () => {}) {}

  get pending(): number { return this.partials.length; }

  /** Takes one fragment datagram (header included); a drop reason when it is unusable. */
  add(d: Buffer, now: number): FragmentDrop | undefined {
    if (d.length <= FRAGMENT_HEADER || d.length > MAX_DATAGRAM) return 'malformed';
    const id = d.readUInt32BE(10), index = d.readUInt16BE(14), count = d.readUInt16BE(16);
    const chunk = d.length - FRAGMENT_HEADER;
    const last = index === count - 1;
    if (count < 2 || count > MAX_FRAGMENTS || index >= count || (!last && chunk !== FRAGMENT_PAYLOAD)) return 'malformed';
    let p = this.partials.find((x) => x.id === id);
    if (!p) {
      if (this.done.includes(id)) return undefined; // a repair that came after the original
      if (this.newest >= 0 && !newer(id, this.newest) && ((this.newest - id) >>> 0) >= IN_PROGRESS) return 'stale';
      const bytes = count * FRAGMENT_PAYLOAD;
      if (this.partials.length >= IN_PROGRESS) this.drop(this.partials[0]!);
      if (this.budget.used + bytes > this.budget.limit) return 'budget';
      this.budget.used += bytes;
      transientBytes(bytes);
      p = { id, count, got: 0, seen: new Uint8Array(count), buf: Buffer.allocUnsafe(bytes), size: 0, first: now, last: now, requests: 0, requestedAt: now };
      // Kept oldest first.
      let at = this.partials.length;
      while (at > 0 && newer(this.partials[at - 1]!.id, id)) at--;
      this.partials.splice(at, 0, p);
      if (this.newest < 0 || newer(id, this.newest)) this.newest = id;
      if (this.partials.length > 1) this.due = true;
    } else if (count !== p.count) {
      return 'malformed';
    }
    p.last = now;
    if (p.seen[index]) return undefined;
    p.seen[index] = 1;
    d.copy(p.buf, index * FRAGMENT_PAYLOAD, FRAGMENT_HEADER);
    if (last) p.size = index * FRAGMENT_PAYLOAD + chunk;
    if (++p.got < p.count) return undefined;
    // A plain Uint8Array, as for a data datagram's payload (a Buffer's slice() would not copy).
    const whole = new Uint8Array(p.buf.buffer, p.buf.byteOffset, p.size);
    this.remove(p);
    this.done.push(id);
    if (this.done.length > 2 * IN_PROGRESS) this.done.shift();
    this.complete(id, whole);
    return undefined;
  }

  /** Hands on a complete message, or holds it behind an older one still under repair. */
  private complete(id: number, msg: Uint8Array): void {
    if (this.partials.length === 0 || !newer(id, this.partials[0]!.id)) {
      this.deliver(msg);
      this.flush();
      return;
    }
    let at = this.held.length;
    while (at > 0 && newer(this.held[at - 1]!.id, id)) at--;
    this.held.splice(at, 0, { id, msg });
    // Held messages count against the listener's budget too, so many edges cannot pile them up.
    this.heldBytes += msg.length;
    this.budget.used += msg.length;
    const over = () => this.heldBytes > MAX_HELD_BYTES || this.budget.used > this.budget.limit;
    while (over() && this.partials.length > 0 && newer(this.held[0]!.id, this.partials[0]!.id)) this.drop(this.partials[0]!);
  }

  /** Held messages no older incomplete one stands in front of any more. */
  private flush(): void {
    while (this.held.length > 0 && (this.partials.length === 0 || newer(this.partials[0]!.id, this.held[0]!.id))) {
      const h = this.held.shift()!;
      this.heldBytes -= h.msg.length;
      this.budget.used -= h.msg.length;
      this.deliver(h.msg);
    }
  }

  /**
   * Requests to send now: for each incomplete message a newer one has overtaken, or that
   * has been quiet too long. Messages past their requests or their age are given up.
   */
  requests(now: number): Buffer[] {
    this.due = false;
    const out: Buffer[] = [];
    for (const p of [...this.partials]) {
      if (now - p.first > GIVE_UP_MS || (p.requests >= MAX_REQUESTS && now - p.requestedAt > REQUEST_AGAIN_MS)) { this.drop(p); continue; }
      if (p.requests >= MAX_REQUESTS) continue;
      const overtaken = newer(this.newest, p.id);
      if (!overtaken && now - p.last < TAIL_QUIET_MS) continue;
      if (p.requests > 0 && now - p.requestedAt < REQUEST_AGAIN_MS) continue;
      p.requests++;
      p.requestedAt = now;
      out.push(encodeRequest(p));
    }
    return out;
  }

  /** Frees every slot (the edge closed). */
  release(): void {
    for (const p of [...this.partials]) this.remove(p);
    this.held.length = 0;
    this.budget.used -= this.heldBytes;
    this.heldBytes = 0;
  }

  private drop(p: Partial): void {
    this.onLost();
    this.remove(p);
    this.flush();
  }

  private remove(p: Partial): void {
    const i = this.partials.indexOf(p);
    if (i < 0) return;
    this.partials.splice(i, 1);
    this.budget.used -= p.count * FRAGMENT_PAYLOAD;
  }
}

/** The request body (after the common 10 bytes): id, count, bitmap of missing indices. */
function encodeRequest(p: Partial): Buffer {
  const b = Buffer.alloc(REQUEST_FIXED - 10 + Math.ceil(p.count / 8));
  b.writeUInt32BE(p.id >>> 0, 0);
  b.writeUInt16BE(p.count, 4);
  for (let i = 0; i < p.count; i++) if (!p.seen[i]) b[6 + (i >> 3)]! |= 0x80 >> (i & 7);
  return b;
}

/** A request datagram (header included): the message and the missing indices, or null if malformed. */
export function decodeRequest(d: Buffer): { id: number; count: number; missing: number[] } | null {
  if (d.length < REQUEST_FIXED + 1) return null;
  const id = d.readUInt32BE(10), count = d.readUInt16BE(14);
  if (count < 2 || count > MAX_FRAGMENTS || d.length !== REQUEST_FIXED + Math.ceil(count / 8)) return null;
  const missing: number[] = [];
  for (let i = 0; i < count; i++) if (d[REQUEST_FIXED + (i >> 3)]! & (0x80 >> (i & 7))) missing.push(i);
  return { id, count, missing };
}

interface Kept { id: number; off: number; len: number; at: number; resends: number }

/**
 * A sender's last fragmented messages, kept briefly so that requested fragments can be
 * sent again. They are copied into a ring (at most KEEP_BYTES) that the edge keeps while it
 * sends large messages (freed once nothing has been kept for KEEP_MS): keeping references
 * instead would make each sealed super-packet outlive two young-generation collections, so
 * V8 would promote it and free it only in a mark-compact, after tens of MB of them (see
 * util/gc-pacer.ts). take() hands out a copy, as a resend is rare and may be sent
 * asynchronously (node:dgram) after the ring has moved on.
 */
export class Retained {
  private readonly kept: Kept[] = [];
  private bytes = 0;
  private ring: Uint8Array | undefined;
  /** Where the next message goes in the ring. */
  private head = 0;
  constructor(private readonly budget: FragmentBudget) {}

  get size(): number { return this.kept.length; }

  keep(id: number, payload: Uint8Array, now: number): void {
    const len = payload.length;
    while (this.kept.length > 0 && (this.bytes + len > KEEP_BYTES || now - this.kept[0]!.at > KEEP_MS)) this.forget();
    if (len > KEEP_BYTES || this.budget.used + len > this.budget.limit) return;
    const ring = this.roomFor(len);
    // Kept messages lie in the ring from just after head on, oldest first, then from 0 up to head.
    let off = this.head;
    if (off + len > ring.length) {
      while (this.kept.length > 0 && this.kept[0]!.off >= off) this.forget();  // the tail's, the oldest
      off = 0;
    }
    while (this.kept.length > 0 && this.kept[0]!.off < off + len && off < this.kept[0]!.off + this.kept[0]!.len) this.forget();
    ring.set(payload, off);
    this.head = off + len;
    this.budget.used += len;
    this.bytes += len;
    this.kept.push({ id, off, len, at: now, resends: 0 });
  }

  /**
   * The ring, grown (doubling, from RING_MIN up to KEEP_BYTES, the kept messages moved over)
   * while what is kept plus the new message would fill more than half of it: an edge that
   * sends one large message reserves half a megabyte, not eight.
   */
  private roomFor(len: number): Uint8Array {
    const old = this.ring;
    let size = old?.length ?? RING_MIN;
    while (2 * (this.bytes + len) > size && size < KEEP_BYTES) size = Math.min(KEEP_BYTES, 2 * size);
    if (old && size === old.length) return old;
    const ring = uninitializedRing(size);
    let at = 0;
    for (const k of this.kept) {
      ring.set(old!.subarray(k.off, k.off + k.len), at);
      k.off = at;
      at += k.len;
    }
    this.ring = ring;
    this.head = at;
    return ring;
  }

  /** A copy of the message a request names, if still kept and not resent too often. */
  take(id: number, count: number, now: number): Uint8Array | undefined {
    const k = this.kept.find((x) => x.id === id);
    if (!k || now - k.at > KEEP_MS || k.resends >= MAX_RESENDS || fragmentCount(k.len) !== count) return undefined;
    k.resends++;
    return this.ring!.slice(k.off, k.off + k.len);
  }

  /** Lets go of messages past their time (an edge that stopped sending large messages), and of the ring once empty. */
  prune(now: number): void {
    while (this.kept.length > 0 && now - this.kept[0]!.at > KEEP_MS) this.forget();
    if (this.kept.length === 0) this.dropRing();
  }

  release(): void {
    while (this.kept.length > 0) this.forget();
    this.dropRing();
  }

  /** Forgets the oldest message. */
  private forget(): void {
    const k = this.kept.shift()!;
    this.budget.used -= k.len;
    this.bytes -= k.len;
  }

  private dropRing(): void {
    this.ring = undefined;
    this.head = 0;
  }
}

/** A ring, not zero-filled: only what keep() wrote is ever read. A plain Uint8Array, so slice() copies. */
function uninitializedRing(size: number): Uint8Array {
  const b = Buffer.allocUnsafeSlow(size);
  return new Uint8Array(b.buffer, b.byteOffset, size);
}

/** How many fragments a message of `length` bytes takes. */
export const fragmentCount = (length: number): number => Math.ceil(length / FRAGMENT_PAYLOAD);

/** Writes a fragment's own fields into head (FRAGMENT_HEADER bytes, the common 10 already in place). */
export function writeFragmentFields(head: Buffer, msgId: number, index: number, count: number): void {
  head.writeUInt32BE(msgId >>> 0, 10);
  head.writeUInt16BE(index, 14);
  head.writeUInt16BE(count, 16);
}
