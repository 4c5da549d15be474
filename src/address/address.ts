// 160-bit ring addresses. Native BigInt keeps the ring arithmetic exact; the text form is
// Brunet's `brunet:node:` + RFC 4648 base32 (32 characters, no padding for 20 bytes).
import { BytesInterner } from '../util/intern.js';
import type { RandomSource } from '../util/random.js';

export const ADDRESS_BYTES = 20;
export const RING_BITS = 160n;
export const RING = 1n << RING_BITS;
const HALF = RING >> 1n;
const MASK = RING - 1n;
const PREFIX = 'brunet:node:';
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export class AddressError extends Error {
  override name = 'AddressError';
}

export class Address {
  private cachedKey?: string;
  private cachedBytes?: Uint8Array;
  private cachedValue?: bigint;
  /** One of the two is given; the other is derived on first use. */
  private constructor(value: bigint | undefined, bytes?: Uint8Array) {
    this.cachedValue = value;
    this.cachedBytes = bytes;
  }
  /** The ring position; addresses decoded from packets build it only when routing needs it. */
  get value(): bigint {
    return this.cachedValue ??= toValue(this.cachedBytes!);
  }
  /** Text form, computed on first use and cached: routing decodes two addresses per packet
   *  but rarely needs their text, while tables use it as a map key. */
  get key(): string { return this.cachedKey ??= base32Encode(this.bytes, PREFIX); }

  static fromBigInt(v: bigint): Address {
    if (v < 0n || v > MASK) throw new AddressError('address out of the 160-bit range');
    return new Address(v);
  }
  static fromBytes(b: Uint8Array): Address {
    if (b.length !== ADDRESS_BYTES) throw new AddressError(`address must be ${ADDRESS_BYTES} bytes, got ${b.length}`);
    return new Address(undefined, b.slice());
  }
  /**
   * As fromBytes, but one instance per address in the process: for addresses that are kept
   * (neighbour lists and link messages name the same few peers over and over) and for the
   * routing header's two (the lookup is by the bytes' hash, and the shared instance keeps its
   * text key: decoding a header and looking dst up went from 0.65 to 0.42 µs).
   */
  static shared(b: Uint8Array): Address {
    if (b.length !== ADDRESS_BYTES) throw new AddressError(`address must be ${ADDRESS_BYTES} bytes, got ${b.length}`);
    return shared.get(b, (k) => new Address(undefined, k.slice()));
  }
  /** Parses `brunet:node:XXXX…`, case-insensitive, optional `urn:` prefix. */
  static parse(text: string): Address {
    let t = text.trim();
    if (t.toLowerCase().startsWith('urn:')) t = t.slice(4);
    if (!t.toLowerCase().startsWith(PREFIX)) throw new AddressError(`not a brunet:node: address: ${JSON.stringify(text)}`);
    const body = t.slice(PREFIX.length);
    // 33 characters would still decode to 20 bytes (the extra 5 bits are dropped), so check length.
    if (body.length !== 32) throw new AddressError(`address must have 32 base32 characters, got ${body.length}: ${JSON.stringify(text)}`);
    return Address.fromBytes(base32Decode(body));
  }
  /** A fresh class-0 address (lowest bit clear) from the given source. */
  static random(rnd: RandomSource): Address {
    const b = rnd.bytes(ADDRESS_BYTES);
    b[ADDRESS_BYTES - 1]! &= 0xfe;
    return Address.fromBytes(b);
  }
  /** Forces class 0, as Brunet does for ring targets. */
  static ringPoint(v: bigint): Address {
    return new Address(((v % RING) + RING) % RING & ~1n);
  }

  /** Big-endian bytes (cached: headers and DHT keys ask for them on every packet). Do not mutate. */
  get bytes(): Uint8Array { return this.cachedBytes ??= toBytes(this.value); }
  get isClass0(): boolean { return (this.value & 1n) === 0n; }
  equals(o: Address): boolean {
    const a = this.cachedBytes, b = o.cachedBytes;
    if (!a || !b) return this.value === o.value;
    for (let i = 0; i < ADDRESS_BYTES; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  toString(): string { return this.key; }

  /** Clockwise ("left", increasing) distance from this to o, in [0, 2^160). */
  leftDistanceTo(o: Address): bigint { return (o.value - this.value) & MASK; }
  /** Counter-clockwise ("right", decreasing) distance, in [0, 2^160). */
  rightDistanceTo(o: Address): bigint { return (this.value - o.value) & MASK; }
  /** Signed shortest distance, in (-2^159, 2^159]. */
  distanceTo(o: Address): bigint {
    const d = this.leftDistanceTo(o);
    return d > HALF ? d - RING : d;
  }
  absDistanceTo(o: Address): bigint {
    const d = this.leftDistanceTo(o);
    return d > HALF ? RING - d : d;
  }
  /** True if this lies strictly inside the clockwise arc start → end (empty if start == end). */
  isBetweenFromLeft(start: Address, end: Address): boolean {
    if (start.value === end.value) return false;
    const span = start.leftDistanceTo(end);
    const d = start.leftDistanceTo(this);
    return d > 0n && d < span;
  }
  /** Mirror image: strictly inside the counter-clockwise arc start → end. */
  isBetweenFromRight(start: Address, end: Address): boolean {
    return this.isBetweenFromLeft(end, start);
  }
  /** Is a closer to this than b (by absolute ring distance)? */
  isCloserToFirst(a: Address, b: Address): boolean {
    return this.absDistanceTo(a) < this.absDistanceTo(b);
  }
}

// Both conversions go through 64-bit words (a few BigInt operations instead of 20 per byte):
// routing converts the destination of every packet it forwards.
const U64 = (1n << 64n) - 1n;

function toBytes(v: bigint): Uint8Array {
  const b = new Uint8Array(ADDRESS_BYTES);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, Number(v >> 128n));
  dv.setBigUint64(4, (v >> 64n) & U64);
  dv.setBigUint64(12, v & U64);
  return b;
}

function toValue(b: Uint8Array): bigint {
  const dv = new DataView(b.buffer, b.byteOffset, ADDRESS_BYTES);
  return (BigInt(dv.getUint32(0)) << 128n) | (dv.getBigUint64(4) << 64n) | dv.getBigUint64(12);
}

const shared = new BytesInterner<Address>((a) => a.bytes);

/**
 * Base32 text after `prefix`, built from character codes in one go: appending character by
 * character would leave V8 a tree of pieces (about 32 bytes each) for as long as the text
 * is kept, where this is one flat string.
 */
export function base32Encode(b: Uint8Array, prefix = ''): string {
  const out: number[] = [];
  for (let i = 0; i < prefix.length; i++) out.push(prefix.charCodeAt(i));
  let bits = 0, acc = 0;
  for (const x of b) {
    acc = (acc << 8) | x; bits += 8;
    while (bits >= 5) { out.push(CODES[(acc >>> (bits - 5)) & 31]!); bits -= 5; }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out.push(CODES[(acc << (5 - bits)) & 31]!);
  return String.fromCharCode(...out);
}
const CODES = [...ALPHABET].map((c) => c.charCodeAt(0));

export function base32Decode(s: string): Uint8Array {
  const t = s.toUpperCase().replace(/=+$/, '');
  const out: number[] = [];
  let bits = 0, acc = 0;
  for (const ch of t) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) throw new AddressError(`invalid base32 character ${JSON.stringify(ch)}`);
    acc = (acc << 5) | v; bits += 5;
    if (bits >= 8) { out.push((acc >>> (bits - 8)) & 0xff); bits -= 8; }
    acc &= (1 << bits) - 1;
  }
  return new Uint8Array(out);
}
