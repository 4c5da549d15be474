// NodeInfo: an address plus the TAs under which that node may be reached; what CTMs,
// link messages and neighbour lists carry.
import { Address } from '../address/address.js';
import { TransportAddress } from '../transport/ta.js';
import { asBytes, asList, asMap, asString, decodeValue, Encoded, encodeValue, listItems, WireError, type Value } from '../wire/value.js';

export const MAX_NODEINFO_TAS = 12;

export interface NodeInfo {
  readonly address: Address;
  readonly tas: readonly TransportAddress[];
}

export function encodeNodeInfo(n: NodeInfo): Value {
  return { a: n.address.bytes, t: n.tas.slice(0, MAX_NODEINFO_TAS).map((ta) => ta.key) };
}

interface EncodedInfo { address: Address; tas: readonly TransportAddress[]; enc: Encoded }
/** By the NodeInfo's TA list: a connection's peerTAs stays the same array until the peer announces new TAs. */
const encodedInfos = new WeakMap<readonly TransportAddress[], EncodedInfo>();

/**
 * encodeNodeInfo, encoded once per (address, TA list): the same peer's NodeInfo goes out in
 * many neighbour lists. The entry is checked against the list's current items, so a list
 * changed in place is encoded afresh.
 */
export function encodeNodeInfoOnce(n: NodeInfo): Encoded {
  const had = encodedInfos.get(n.tas);
  if (had && had.address === n.address && sameItems(had.tas, n.tas)) return had.enc;
  const enc = new Encoded(encodeValue(encodeNodeInfo(n)));
  encodedInfos.set(n.tas, { address: n.address, tas: n.tas.slice(), enc });
  return enc;
}

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** How many NodeInfos (TA lists) of one address are kept for sharing. */
const VARIANTS = 8;
/**
 * By address: its last NodeInfos (most recently used first), frozen and shared by every node in
 * the process. A peer's NodeInfo arrives in the neighbour lists of every Status about it and
 * is kept in them, and every connection to it has one (Connection.info); made afresh each
 * time, a 2,000-node simulation held 200 per node. Its TA list varies (the relay TA names
 * the peer's neighbours of the moment), hence a few per address. Held weakly through the
 * address (itself shared, address.ts).
 */
const sharedInfos = new WeakMap<Address, NodeInfo[]>();

/** The shared, frozen NodeInfo of this address and TA list (the same TransportAddress objects in the same order). */
export function sharedNodeInfo(address: Address, tas: readonly TransportAddress[]): NodeInfo {
  let list = sharedInfos.get(address);
  if (list === undefined) sharedInfos.set(address, list = []);
  for (let i = 0; i < list.length; i++) {
    const x = list[i]!;
    if (x.tas !== tas && !sameItems(x.tas, tas)) continue;
    if (i > 0) { list.splice(i, 1); list.unshift(x); }
    return x;
  }
  // A frozen list is kept as it is; another is copied to exactly its length (an array grown
  // by push keeps room for 17 elements) and frozen.
  const info: NodeInfo = Object.freeze({ address, tas: Object.isFrozen(tas) ? tas : Object.freeze(tas.slice()) });
  list.unshift(info);
  if (list.length > VARIANTS) list.pop();
  return info;
}

export function decodeNodeInfo(v: Value, what = 'nodeinfo'): NodeInfo {
  const m = asMap(v, what);
  let address: Address;
  try { address = Address.shared(asBytes(m.a ?? null, `${what}.a`)); } catch (e) {
    throw e instanceof WireError ? e : new WireError(`${what}.a: ${(e as Error).message}`);
  }
  const tas: TransportAddress[] = [];
  for (const t of asList(m.t ?? [], `${what}.t`).slice(0, MAX_NODEINFO_TAS)) {
    // An unknown TA kind from a newer peer is skipped rather than rejecting the message.
    try { tas.push(TransportAddress.parse(asString(t, `${what}.t`))); } catch { /* skip */ }
  }
  return sharedNodeInfo(address, tas);
}

export function decodeNodeInfoList(v: Value, what: string, max = 32): NodeInfo[] {
  return asList(v ?? [], what).slice(0, max).map((x, i) => decodeNodeInfo(x, `${what}[${i}]`));
}

/**
 * Decoded NodeInfos by their encoding. A peer's NodeInfo is encoded once (encodeNodeInfoOnce)
 * and the same bytes arrive in every neighbour list that names it; a hit skips the value
 * decoder and the interning of its address and TAs (at 3,000 simulated nodes, 98.5 % of
 * the NodeInfos in link messages hit). Looked up by a 32-bit hash of the length and the first
 * and last HASHED bytes (the address is at the front, a relay TA's forwarders at the end; the
 * few variants of one peer that collide share a bucket), then the whole bytes compared. What it
 * returns is what decodeNodeInfo would: the entry holds its Address and TransportAddresses, so
 * the interners hand out those same objects, and sharedNodeInfo is asked again (it may have let
 * the entry's NodeInfo go). Bounded: emptied when full.
 */
const BY_BYTES_MAX = 1 << 18;
const BUCKET_MAX = 4;
const HASHED = 48;
interface ByBytes { bytes: Buffer; info: NodeInfo }
const byBytes = new Map<number, ByBytes[]>();

/**
 * decodeNodeInfoList for a list still encoded (decodeValueRaw's `raw`; undefined: absent, an
 * empty list). The same NodeInfos, and the same errors, as decoding it as a value first.
 */
export function decodeNodeInfoListRaw(raw: Uint8Array | undefined, what: string, max = 32): NodeInfo[] {
  if (raw === undefined) return [];
  const at = listItems(raw, 1);
  if (at === undefined) return decodeNodeInfoList(decodeValue(raw) ?? [], what, max);
  const n = at.length - 1, out: NodeInfo[] = new Array(Math.min(n, max));
  for (let i = 0; i < n; i++) {
    const s = at[i]!, e = at[i + 1]!;
    if (i >= max) { decodeValue(raw.subarray(s, e)); continue; } // checked as a whole message was, then dropped
    const h = hashEnds(raw, s, e);
    const bucket = byBytes.get(h);
    let hit: ByBytes | undefined;
    if (bucket !== undefined) {
      for (const x of bucket) if (x.bytes.length === e - s && x.bytes.compare(raw, s, e) === 0) { hit = x; break; }
    }
    if (hit) { out[i] = hit.info = sharedNodeInfo(hit.info.address, hit.info.tas); continue; }
    const info = out[i] = decodeNodeInfo(decodeValue(raw.subarray(s, e)), `${what}[${i}]`);
    if (byBytes.size >= BY_BYTES_MAX) byBytes.clear();
    const bytes = Buffer.allocUnsafeSlow(e - s); // its own memory, not a slice of the shared pool (it is kept)
    bytes.set(raw.subarray(s, e));
    const entry = { bytes, info };
    if (bucket === undefined || byBytes.size === 0) byBytes.set(h, [entry]);
    else { bucket.unshift(entry); if (bucket.length > BUCKET_MAX) bucket.pop(); }
  }
  return out;
}

/** FNV-1a over the length and b[s, e)'s first and last HASHED bytes (all of them if fewer). */
function hashEnds(b: Uint8Array, s: number, e: number): number {
  let h = 0x811c9dc5 ^ (e - s);
  const mid = Math.min(e, s + HASHED), tail = Math.max(mid, e - HASHED);
  for (let j = s; j < mid; j++) h = Math.imul(h ^ b[j]!, 0x01000193);
  for (let j = tail; j < e; j++) h = Math.imul(h ^ b[j]!, 0x01000193);
  return h;
}
