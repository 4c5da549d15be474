// The revocation list of a group CA: the certificate serials and member keys it revoked,
// signed by the CA (authority.ts signs, verify.ts checks, ../revocation.ts watches a file
// and enforces it). Conventions as in certificate.ts.
//
// Revocation list, version 1 (93 + 8s + 32k bytes):
//   0       4    magic "BRNR"
//   4       1    version = 1
//   5       8    CA key id
//   13      8    issuedAt; a watcher never replaces a list by one issued earlier
//   21      4    s = number of revoked serials
//   25      8s   serials, ascending, unique
//   25+8s   4    k = number of revoked member keys
//   29+8s   32k  Ed25519 public keys, ascending (bytewise), unique
//   29+8s+32k 64 Ed25519 signature by the CA over everything before it
import { WireError } from '../../wire/value.js';
import { SIG_LEN, fileBytes, magicIs, u64 } from './certificate.js';
import { CertificateError } from './errors.js';

export const REVOCATION_MAGIC = 'BRNR';
export const REVOCATION_VERSION = 1;
/** Bounds a revocation list to about 8 MB. */
export const MAX_REVOKED_SERIALS = 500_000;
export const MAX_REVOKED_KEYS = 100_000;

const utf8 = new TextEncoder();
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** What is revoked: certificate serials and member keys (hex of the 32-byte key). */
export interface Revoked {
  readonly serials: ReadonlySet<bigint>;
  readonly keys: ReadonlySet<string>;
}

export interface RevocationList extends Revoked {
  readonly caKeyId: Uint8Array;
  readonly issuedAt: number;
}

export const NO_REVOCATIONS: Revoked = Object.freeze({ serials: new Set<bigint>(), keys: new Set<string>() });

export interface RevocationInput {
  serials?: Iterable<bigint>;
  /** Raw 32-byte Ed25519 keys or their hex. */
  keys?: Iterable<Uint8Array | string>;
}

export function isRevoked(r: Revoked, serial: bigint | undefined, publicKey: Uint8Array | undefined): boolean {
  return (serial !== undefined && r.serials.has(serial)) || (publicKey !== undefined && r.keys.has(hex(publicKey)));
}

/** Encodes a list of the CA with key id `caKeyId` issued at `issuedAt` (ms epoch); `sign` signs the body. */
export function encodeRevocations(caKeyId: Uint8Array, revoked: RevocationInput, issuedAt: number, sign: (body: Uint8Array) => Uint8Array): Uint8Array {
  const serials = [...new Set(revoked.serials ?? [])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  for (const s of serials) if (s < 0n || s >= 1n << 64n) throw new CertificateError('malformed', `serial ${s} out of range`);
  const keyHex = [...new Set([...(revoked.keys ?? [])].map((k) => (typeof k === 'string' ? k.toLowerCase() : hex(k))))].sort();
  for (const k of keyHex) if (!/^[0-9a-f]{64}$/.test(k)) throw new CertificateError('malformed', `revoked key must be 32 bytes (64 hex digits): ${k}`);
  if (serials.length > MAX_REVOKED_SERIALS || keyHex.length > MAX_REVOKED_KEYS) throw new CertificateError('malformed', 'revocation list too large');
  if (!Number.isSafeInteger(issuedAt) || issuedAt < 0) throw new CertificateError('malformed', `issuedAt ${issuedAt} out of range`);
  const bodyLen = 29 + 8 * serials.length + 32 * keyHex.length;
  const out = new Uint8Array(bodyLen + SIG_LEN);
  const dv = new DataView(out.buffer);
  out.set(utf8.encode(REVOCATION_MAGIC), 0);
  out[4] = REVOCATION_VERSION;
  out.set(caKeyId, 5);
  dv.setBigUint64(13, BigInt(issuedAt));
  dv.setUint32(21, serials.length);
  let off = 25;
  for (const s of serials) { dv.setBigUint64(off, s); off += 8; }
  dv.setUint32(off, keyHex.length); off += 4;
  for (const k of keyHex) { out.set(Buffer.from(k, 'hex'), off); off += 32; }
  out.set(sign(out.subarray(0, bodyLen)), bodyLen);
  return out;
}

/** Parses a revocation list without checking its signature. */
export function decodeRevocations(data: Uint8Array): RevocationList & { signed: Uint8Array; signature: Uint8Array } {
  const b = fileBytes(data, REVOCATION_MAGIC);
  if (!magicIs(b, REVOCATION_MAGIC)) throw new CertificateError('malformed', 'not a brunet-ts revocation list (bad magic)');
  if (b.length < 5) throw new WireError(`revocation list truncated: ${b.length} bytes`);
  if (b[4] !== REVOCATION_VERSION) throw new CertificateError('unsupported-version', `unsupported revocation list version ${b[4]}`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const need = (n: number) => { if (b.length < n) throw new WireError(`revocation list truncated: ${b.length} bytes, need ${n}`); };
  need(25);
  const issuedAt = u64(dv, 13, 'issuedAt');
  const s = dv.getUint32(21);
  if (s > MAX_REVOKED_SERIALS) throw new CertificateError('malformed', `revocation list has ${s} serials (max ${MAX_REVOKED_SERIALS})`);
  need(29 + 8 * s);
  const k = dv.getUint32(25 + 8 * s);
  if (k > MAX_REVOKED_KEYS) throw new CertificateError('malformed', `revocation list has ${k} keys (max ${MAX_REVOKED_KEYS})`);
  const bodyLen = 29 + 8 * s + 32 * k;
  need(bodyLen + SIG_LEN);
  if (b.length > bodyLen + SIG_LEN) throw new WireError(`revocation list has ${b.length - bodyLen - SIG_LEN} trailing bytes`);
  const serials = new Set<bigint>();
  let prev = -1n;
  for (let i = 0; i < s; i++) {
    const v = dv.getBigUint64(25 + 8 * i);
    if (v <= prev) throw new CertificateError('malformed', 'revocation list serials not ascending and unique');
    serials.add(v);
    prev = v;
  }
  const keys = new Set<string>();
  let prevKey = '';
  for (let i = 0; i < k; i++) {
    const off = 29 + 8 * s + 32 * i;
    const kh = hex(b.subarray(off, off + 32));
    if (kh <= prevKey) throw new CertificateError('malformed', 'revocation list keys not ascending and unique');
    keys.add(kh);
    prevKey = kh;
  }
  return { caKeyId: b.slice(5, 13), issuedAt, serials, keys, signed: b.slice(0, bodyLen), signature: b.slice(bodyLen) };
}
