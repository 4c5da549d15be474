// Overlay-level fragmentation for UDP edges (datagram type 3 in udp.ts). A message larger
// than one datagram that fits a 1500-byte path (a VPN's 64 KB TCP super-packet, a large
// DHT value) is cut into fragments here rather than left to IP fragmentation, which NATs
// and firewalls often drop and which the kernel reassembles with no bound we control.
//
// Fragment header, after the common 10 bytes (big-endian):
//   bytes 10..13  message id (u32, per edge, incrementing)
//   bytes 14..15  fragment index (u16)
//   bytes 16..17  fragment count (u16, >= 2)
// Every fragment but the last carries exactly FRAGMENT_PAYLOAD bytes, so a receiver can
// place each one at index × FRAGMENT_PAYLOAD without waiting for the others.

/** Common header (10) + fragment fields (8). */
export const FRAGMENT_HEADER = 18;
/** The largest datagram we send: fits a 1500-byte path over IPv6 (40) + UDP (8). */
export const MAX_DATAGRAM = 1500 - 48;
export const FRAGMENT_PAYLOAD = MAX_DATAGRAM - FRAGMENT_HEADER;
/** Largest message an edge carries: a 64 KB super-packet with overlay headers, even relayed twice. */
export const MAX_MESSAGE = 256 * 1024;
export const MAX_FRAGMENTS = Math.ceil(MAX_MESSAGE / FRAGMENT_PAYLOAD);
/** An incomplete message older than this is given up (its missing fragment is lost). */
const REASSEMBLY_MS = 2000;

/** Memory held by incomplete messages, shared by all edges of one listener. */
export class ReassemblyBudget {
  used = 0;
  constructor(readonly limit = 32 << 20) {}
}

/** Why a fragment was not used; counted by the listener. */
export type FragmentDrop = 'malformed' | 'stale' | 'budget';

/**
 * One edge's message under reassembly. Only the newest message is kept: a single path
 * rarely reorders across messages, and a bounded slot cannot be filled up by a peer.
 */
export class Reassembly {
  private id = -1;
  private count = 0;
  private got = 0;
  private seen = new Uint8Array(0);
  private buf: Buffer | undefined;
  private size = 0;
  private at = 0;

  constructor(private readonly budget: ReassemblyBudget) {}

  /**
   * Takes one fragment datagram (header included); returns the whole message when this
   * fragment completes it, a drop reason when it is unusable, or undefined when more are due.
   */
  add(d: Buffer, now: number): Buffer | FragmentDrop | undefined {
    if (d.length <= FRAGMENT_HEADER || d.length > MAX_DATAGRAM) return 'malformed';
    const id = d.readUInt32BE(10), index = d.readUInt16BE(14), count = d.readUInt16BE(16);
    const chunk = d.length - FRAGMENT_HEADER;
    const last = index === count - 1;
    if (count < 2 || count > MAX_FRAGMENTS || index >= count || (!last && chunk !== FRAGMENT_PAYLOAD)) return 'malformed';
    if (id !== this.id || now - this.at > REASSEMBLY_MS) {
      // Serial-number order: a straggler of an older message must not evict a newer one.
      if (this.buf && id !== this.id && ((id - this.id) >>> 0) >= 0x80000000 && now - this.at <= REASSEMBLY_MS) return 'stale';
      this.release();
      const bytes = count * FRAGMENT_PAYLOAD;
      if (this.budget.used + bytes > this.budget.limit) return 'budget';
      this.budget.used += bytes;
      this.id = id; this.count = count; this.got = 0; this.at = now; this.size = 0;
      this.seen = new Uint8Array(count);
      this.buf = Buffer.allocUnsafe(bytes);
    } else if (count !== this.count) {
      return 'malformed';
    }
    if (this.seen[index]) return undefined; // a duplicate changes nothing
    this.seen[index] = 1;
    d.copy(this.buf!, index * FRAGMENT_PAYLOAD, FRAGMENT_HEADER);
    if (last) this.size = index * FRAGMENT_PAYLOAD + chunk;
    if (++this.got < this.count) return undefined;
    const whole = this.buf!.subarray(0, this.size);
    this.release();
    this.id = id; // later duplicates of a delivered message start nothing new
    return whole;
  }

  /** Frees the slot (the edge closed, or a newer message replaced it). */
  release(): void {
    if (!this.buf) return;
    this.budget.used -= this.count * FRAGMENT_PAYLOAD;
    this.buf = undefined;
    this.id = -1;
  }
}

/** The datagrams of one message: header buffers to pair with payload slices (no copy). */
export function fragmentHeads(common: Buffer, msgId: number, length: number): Array<[Buffer, number, number]> {
  const count = Math.ceil(length / FRAGMENT_PAYLOAD);
  const out: Array<[Buffer, number, number]> = [];
  for (let i = 0; i < count; i++) {
    const head = Buffer.allocUnsafe(FRAGMENT_HEADER);
    common.copy(head, 0, 0, 10);
    head.writeUInt32BE(msgId >>> 0, 10);
    head.writeUInt16BE(i, 14);
    head.writeUInt16BE(count, 16);
    out.push([head, i * FRAGMENT_PAYLOAD, Math.min(length, (i + 1) * FRAGMENT_PAYLOAD)]);
  }
  return out;
}
