// A small tagged binary encoding for structured messages (link handshake, RPC arguments
// and results), in the spirit of Brunet's ADR: self-describing, big-endian, with hard
// limits so a hostile packet can never make the decoder recurse or allocate without bound.
//
//   0x00 null   0x01 false   0x02 true
//   0x03 int32  (4 bytes)    0x04 float64 (8 bytes)
//   0x05 string (u32 length + UTF-8)   0x06 bytes (u32 length + raw)
//   0x07 list   (u32 count + items)    0x08 map (u32 count + (string key, value) pairs)

export type Value = null | boolean | number | string | Uint8Array | Value[] | { [k: string]: Value };
/** What encoders take: a Value, with Encoded parts anywhere in it. */
export type Encodable = null | boolean | number | string | Uint8Array | Encoded | Encodable[] | { [k: string]: Encodable };

/**
 * A value's encoding, made once and written as it is wherever the value is sent again (a
 * peer's NodeInfo in every neighbour list). Only encoders take it; decoders never return it.
 */
export class Encoded {
  constructor(readonly bytes: Uint8Array) {}
}

export class WireError extends Error {
  override name = 'WireError';
}

/** The tag byte in front of every value. */
export const TAG_NULL = 0x00, TAG_FALSE = 0x01, TAG_TRUE = 0x02, TAG_INT32 = 0x03, TAG_FLOAT64 = 0x04;
export const TAG_STRING = 0x05, TAG_BYTES = 0x06, TAG_LIST = 0x07, TAG_MAP = 0x08;

const MAX_DEPTH = 32;
const MAX_ITEMS = 65536;
const utf8 = new TextEncoder();
const utf8d = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

// One spare writer for the process, its buffer reused (encoding never re-enters: values are
// plain data); finish() copies out exactly what was written. Link messages and RPCs are
// encoded per packet, and a fresh buffer per message was most of what they allocated.
let spare: Writer | undefined;
const SPARE_MAX = 64 * 1024;

/**
 * The encoding of v; with `headroom`, after that many zero bytes, for the caller's header
 * (one buffer for the whole packet, not an encoding copied again behind a header).
 */
export function encodeValue(v: Encodable, headroom = 0): Uint8Array {
  const w = spare ?? new Writer();
  spare = undefined; // a throw part-way leaves it out: the next call starts afresh
  w.skip(headroom);
  w.value(v, 0);
  const out = w.finish();
  if (w.capacity <= SPARE_MAX) { w.reset(); spare = w; }
  return out;
}

/** Decodes a whole buffer; trailing bytes are an error. */
export function decodeValue(b: Uint8Array, offset = 0): Value {
  const r = new Reader(b, offset);
  const v = r.value(0);
  if (r.pos !== b.length) throw new WireError(`${b.length - r.pos} trailing bytes`);
  return v;
}

/**
 * decodeValue, except that the top-level map's entry `key` (if the value is a map that has one)
 * is not decoded: its structure is checked as decodeValue checks it (tags, lengths, limits,
 * depth; not the UTF-8 of its strings) and its encoded bytes are returned as `raw`, a view into
 * `b`, for a decoder of its own (node-info.ts decodes neighbour lists through a cache). The map
 * lacks the entry. A key given twice: the last one counts, as in decodeValue.
 */
export function decodeValueRaw(b: Uint8Array, offset: number, key: string): { value: Value; raw: Uint8Array | undefined } {
  const r = new Reader(b, offset);
  const out = r.valueRaw(key);
  if (r.pos !== b.length) throw new WireError(`${b.length - r.pos} trailing bytes`);
  return out;
}

/**
 * If b holds exactly one list (at nesting depth `depth`): where its items start, plus its end
 * (n + 1 offsets), its structure checked as decodeValue checks it but for UTF-8. Not a list:
 * undefined (decode it as a value).
 */
export function listItems(b: Uint8Array, depth: number): number[] | undefined {
  if (b[0] !== TAG_LIST) return undefined;
  const r = new Reader(b, 0);
  return r.items(depth);
}

class Writer {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  private pos = 0;
  private need(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const nb = new Uint8Array(size);
    nb.set(this.buf.subarray(0, this.pos));
    this.buf = nb;
    this.view = new DataView(nb.buffer);
  }
  private u8(x: number): void { this.need(1); this.buf[this.pos++] = x; }
  private u32(x: number): void { this.need(4); this.view.setUint32(this.pos, x); this.pos += 4; }
  private raw(b: Uint8Array): void { this.u32(b.length); this.need(b.length); this.buf.set(b, this.pos); this.pos += b.length; }
  /** u32 length + UTF-8, written in place (ASCII byte by byte, anything else through the encoder). */
  private str(v: string): void {
    const n = v.length;
    this.need(4 + n);
    const buf = this.buf, start = this.pos + 4;
    let i = 0;
    for (; i < n; i++) {
      const c = v.charCodeAt(i);
      if (c >= 0x80) break;
      buf[start + i] = c;
    }
    if (i < n) return this.raw(utf8.encode(v));
    this.view.setUint32(this.pos, n);
    this.pos = start + n;
  }
  reset(): void { this.pos = 0; }
  /** n zero bytes (room for a header). */
  skip(n: number): void { this.need(n); this.buf.fill(0, this.pos, this.pos + n); this.pos += n; }
  get capacity(): number { return this.buf.length; }
  value(v: Encodable, depth: number): void {
    if (depth > MAX_DEPTH) throw new WireError('value nested too deeply');
    if (v === null || v === undefined) return this.u8(TAG_NULL);
    switch (typeof v) {
      case 'boolean': return this.u8(v ? TAG_TRUE : TAG_FALSE);
      case 'number':
        if (Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff) {
          this.u8(TAG_INT32); this.need(4); this.view.setInt32(this.pos, v); this.pos += 4;
        } else {
          this.u8(TAG_FLOAT64); this.need(8); this.view.setFloat64(this.pos, v); this.pos += 8;
        }
        return;
      case 'string': this.u8(TAG_STRING); return this.str(v);
    }
    if (v instanceof Uint8Array) { this.u8(TAG_BYTES); return this.raw(v); }
    if (v instanceof Encoded) { const n = v.bytes.length; this.need(n); this.buf.set(v.bytes, this.pos); this.pos += n; return; }
    if (Array.isArray(v)) {
      this.u8(TAG_LIST); this.u32(v.length);
      for (const x of v) this.value(x, depth + 1);
      return;
    }
    if (typeof v === 'object') {
      this.u8(TAG_MAP);
      const at = this.pos;
      this.u32(0); // the count, written once known (entries holding undefined are left out)
      let n = 0;
      for (const k of Object.keys(v)) {
        const x = v[k];
        if (x === undefined) continue;
        this.str(k); this.value(x, depth + 1); n++;
      }
      this.view.setUint32(at, n);
      return;
    }
    throw new WireError(`cannot encode ${typeof v}`);
  }
  finish(): Uint8Array { return this.buf.slice(0, this.pos); }
}

class Reader {
  private view: DataView;
  constructor(private b: Uint8Array, public pos: number) {
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  private need(n: number): void {
    if (this.pos + n > this.b.length) throw new WireError('truncated value');
  }
  private u32(): number { this.need(4); const x = this.view.getUint32(this.pos); this.pos += 4; return x; }
  private raw(): Uint8Array {
    const n = this.u32(); this.need(n);
    const out = this.b.subarray(this.pos, this.pos + n); this.pos += n;
    return out;
  }
  private str(): string {
    const n = this.u32(); this.need(n);
    const start = this.pos;
    this.pos += n;
    if (n <= SHORT_MAX) { const s = shortAscii(this.b, start, n); if (s !== undefined) return s; }
    try { return utf8d.decode(this.b.subarray(start, start + n)); } catch {
      throw new WireError('invalid UTF-8 in string');
    }
  }
  /** See decodeValueRaw. */
  valueRaw(key: string): { value: Value; raw: Uint8Array | undefined } {
    if (this.b[this.pos] !== TAG_MAP) return { value: this.value(0), raw: undefined };
    this.pos++;
    const n = this.u32();
    if (n > MAX_ITEMS || n * 5 > this.b.length - this.pos) throw new WireError(`map of ${n} entries is too long`);
    const out: { [k: string]: Value } = Object.create(null);
    let raw: Uint8Array | undefined;
    for (let i = 0; i < n; i++) {
      const k = this.str();
      if (k !== key) { out[k] = this.value(1); continue; }
      const start = this.pos;
      this.skip(1);
      raw = this.b.subarray(start, this.pos);
    }
    return { value: out, raw };
  }

  /** See listItems (at a list's tag). */
  items(depth: number): number[] {
    if (depth > MAX_DEPTH) throw new WireError('value nested too deeply');
    this.pos++;
    const n = this.u32();
    if (n > MAX_ITEMS || n > this.b.length - this.pos) throw new WireError(`list of ${n} items is too long`);
    const at = new Array<number>(n + 1);
    for (let i = 0; i < n; i++) { at[i] = this.pos; this.skip(depth + 1); }
    at[n] = this.pos;
    if (this.pos !== this.b.length) throw new WireError(`${this.b.length - this.pos} trailing bytes`);
    return at;
  }

  /** Moves past one value, with value()'s checks but for the UTF-8 of strings (the caller decodes what it keeps). */
  skip(depth: number): void {
    if (depth > MAX_DEPTH) throw new WireError('value nested too deeply');
    this.need(1);
    const tag = this.b[this.pos++]!;
    switch (tag) {
      case TAG_NULL: case TAG_FALSE: case TAG_TRUE: return;
      case TAG_INT32: this.need(4); this.pos += 4; return;
      case TAG_FLOAT64: this.need(8); this.pos += 8; return;
      case TAG_STRING: case TAG_BYTES: { const n = this.u32(); this.need(n); this.pos += n; return; }
      case TAG_LIST: {
        const n = this.u32();
        if (n > MAX_ITEMS || n > this.b.length - this.pos) throw new WireError(`list of ${n} items is too long`);
        for (let i = 0; i < n; i++) this.skip(depth + 1);
        return;
      }
      case TAG_MAP: {
        const n = this.u32();
        if (n > MAX_ITEMS || n * 5 > this.b.length - this.pos) throw new WireError(`map of ${n} entries is too long`);
        for (let i = 0; i < n; i++) { const k = this.u32(); this.need(k); this.pos += k; this.skip(depth + 1); }
        return;
      }
      default: throw new WireError(`unknown value tag 0x${tag.toString(16)}`);
    }
  }

  value(depth: number): Value {
    if (depth > MAX_DEPTH) throw new WireError('value nested too deeply');
    this.need(1);
    const tag = this.b[this.pos++]!;
    switch (tag) {
      case TAG_NULL: return null;
      case TAG_FALSE: return false;
      case TAG_TRUE: return true;
      case TAG_INT32: { this.need(4); const x = this.view.getInt32(this.pos); this.pos += 4; return x; }
      case TAG_FLOAT64: { this.need(8); const x = this.view.getFloat64(this.pos); this.pos += 8; return x; }
      case TAG_STRING: return this.str();
      case TAG_BYTES: return this.raw().slice();
      case TAG_LIST: {
        const n = this.u32();
        if (n > MAX_ITEMS || n > this.b.length - this.pos) throw new WireError(`list of ${n} items is too long`);
        const out: Value[] = new Array(n);
        for (let i = 0; i < n; i++) out[i] = this.value(depth + 1);
        return out;
      }
      case TAG_MAP: {
        const n = this.u32();
        if (n > MAX_ITEMS || n * 5 > this.b.length - this.pos) throw new WireError(`map of ${n} entries is too long`);
        const out: { [k: string]: Value } = Object.create(null);
        for (let i = 0; i < n; i++) { const k = this.str(); out[k] = this.value(depth + 1); }
        return out;
      }
      default: throw new WireError(`unknown value tag 0x${tag.toString(16)}`);
    }
  }
}

// Short ASCII strings (map keys, TAs) are most of what is decoded, the same few thousand over and
// over: each is made once and looked up by its bytes (a 32-bit hash, then the characters
// compared), which skips the text decoder's fixed cost and hands equal strings out as one
// instance (whose hash a Map lookup then has cached). Bounded: emptied when full.
const SHORT_MAX = 160;
const SHORT_CACHE_MAX = 1 << 17;
const shortStrings = new Map<number, string>();

/** The string of b[start, start + n) if it is all ASCII (undefined: not, decode it in full). */
function shortAscii(b: Uint8Array, start: number, n: number): string | undefined {
  let h = 0x811c9dc5 ^ n;
  for (let i = start, end = start + n; i < end; i++) {
    const c = b[i]!;
    if (c >= 0x80) return undefined;
    h = Math.imul(h ^ c, 0x01000193);
  }
  const had = shortStrings.get(h);
  if (had !== undefined && had.length === n) {
    let i = 0;
    while (i < n && had.charCodeAt(i) === b[start + i]) i++;
    if (i === n) return had;
  }
  const s = String.fromCharCode.apply(null, b.subarray(start, start + n) as unknown as number[]);
  if (shortStrings.size >= SHORT_CACHE_MAX) shortStrings.clear();
  shortStrings.set(h, s); // a colliding string replaces the one before (both stay correct)
  return s;
}

// Typed accessors: decoders use these so a field of the wrong type is a WireError, not a crash.
type Obj = { [k: string]: Value };
export function asMap(v: Value, what: string): Obj {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) throw new WireError(`${what}: expected a map`);
  return v;
}
export function asList(v: Value, what: string): Value[] {
  if (!Array.isArray(v)) throw new WireError(`${what}: expected a list`);
  return v;
}
export function asString(v: Value, what: string): string {
  if (typeof v !== 'string') throw new WireError(`${what}: expected a string`);
  return v;
}
export function asInt(v: Value, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new WireError(`${what}: expected an integer`);
  return v;
}
export function asBytes(v: Value, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new WireError(`${what}: expected bytes`);
  return v;
}
export function asBool(v: Value, what: string): boolean {
  if (typeof v !== 'boolean') throw new WireError(`${what}: expected a boolean`);
  return v;
}
