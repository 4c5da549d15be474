// Group membership by certificate authority: a group CA (an Ed25519 key) signs member
// certificates binding a node's Ed25519 key and address to a member name and a validity
// window, and signs revocation lists. Secure edges carry the certificate in the handshake
// identity payload; membershipVerifier() is the SecureEdgeListener `verifyPeer` hook that
// admits only holders of a valid, unrevoked certificate of our CA for the key they proved.
//
// All integers big-endian. Times are u64 milliseconds since the Unix epoch. The CA key id
// is the first 8 bytes of SHA-256(CA Ed25519 public key). Each signature is Ed25519 by the
// CA over every byte before it; the leading magic separates the signed formats, so a
// signature over one can never be replayed as the other.
//
// Certificate, version 1 (155 + n bytes):
//   off     len  field
//   0       4    magic "BRNC"
//   4       1    version = 1
//   5       1    kind: 1 = member certificate, 2 = CA certificate (self-signed; the ca.pub file)
//   6       8    CA key id (for a CA certificate: its own)
//   14      32   subject Ed25519 public key
//   46      20   subject node address = addressOf(subject key), i.e. SHA-1(key) as a ring point
//   66      1    n = name length in bytes (0..64)
//   67      n    name, UTF-8, no control characters
//   67+n    8    notBefore (valid from, inclusive)
//   75+n    8    notAfter (expired from, inclusive)
//   83+n    8    serial (random)
//   91+n    64   Ed25519 signature by the CA over bytes [0, 91+n)
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
//
// CA key file (JSON, mode 0600), next to the public ca.pub (a CA certificate):
//   { "format": "brunet-ts-ca-key", "version": 1, "name": …, "keyId": hex,
//     "ed25519": { "private": b64(seed 32), "public": b64(32) } }
//
// Certificate and list files are written in the binary form; the readers also accept the
// same bytes base64-encoded (e.g. pasted into a config or a terminal).
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Address } from '../address/address.js';
import type { Clock } from '../util/clock.js';
import { cryptoRandom, type RandomSource } from '../util/random.js';
import { WireError } from '../wire/value.js';
import { addressOf } from './identity.js';
import { bytesEqual, ed25519FromSeed, ed25519Sign, ed25519Verify, rawPrivate, rawPublic, sha256 } from './primitives.js';
import type { PeerInfo, VerifyPeer } from './secure-types.js';

export const CERT_MAGIC = 'BRNC';
export const REVOCATION_MAGIC = 'BRNR';
export const CERT_VERSION = 1;
export const REVOCATION_VERSION = 1;
export const KIND_MEMBER = 1;
export const KIND_CA = 2;
export const KEY_ID_LEN = 8;
export const MAX_NAME_BYTES = 64;
/** Bounds a revocation list to about 8 MB. */
export const MAX_REVOKED_SERIALS = 500_000;
export const MAX_REVOKED_KEYS = 100_000;
export const DEFAULT_CA_VALID_DAYS = 3650;
/** signMember backdates notBefore by this much, so a member whose clock lags a little can still link. */
export const NOT_BEFORE_BACKDATE_MS = 5 * 60_000;
const DAY_MS = 86_400_000;
const SIG_LEN = 64;
const CERT_FIXED = 91 + SIG_LEN;
const CA_KEY_FORMAT = 'brunet-ts-ca-key';

export type CertificateFailure =
  | 'malformed' | 'unsupported-version' | 'wrong-kind' | 'wrong-ca' | 'bad-signature' | 'address-mismatch'
  | 'expired' | 'not-yet-valid' | 'key-mismatch' | 'revoked' | 'stale';

/** A certificate or revocation list was refused; `reason` is the machine-readable cause. */
export class CertificateError extends Error {
  override name = 'CertificateError';
  constructor(readonly reason: CertificateFailure, message: string) { super(message); }
}

const utf8 = new TextEncoder();
const utf8strict = new TextDecoder('utf-8', { fatal: true });
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** First 8 bytes of SHA-256 of the CA public key. */
export function caKeyId(caPublicKey: Uint8Array): Uint8Array {
  if (caPublicKey.length !== 32) throw new CertificateError('malformed', `CA public key must be 32 bytes, got ${caPublicKey.length}`);
  return new Uint8Array(sha256(caPublicKey).subarray(0, KEY_ID_LEN));
}

/** A serial as printed and parsed by the tools: 16 lower-case hex digits. */
export function formatSerial(serial: bigint): string {
  return serial.toString(16).padStart(16, '0');
}
export function parseSerial(text: string): bigint {
  const t = text.trim().replace(/^0x/i, '');
  if (!/^[0-9a-fA-F]{1,16}$/.test(t)) throw new CertificateError('malformed', `serial must be 1-16 hex digits, got ${JSON.stringify(text)}`);
  return BigInt('0x' + t);
}

/** Rejects names the certificate cannot carry; returns the UTF-8 bytes. */
export function checkName(name: string): Uint8Array {
  const b = utf8.encode(name);
  if (b.length > MAX_NAME_BYTES) throw new CertificateError('malformed', `name is ${b.length} bytes in UTF-8; at most ${MAX_NAME_BYTES} allowed`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) throw new CertificateError('malformed', 'name must not contain control characters');
  return b;
}

// ---------------------------------------------------------------------------------------
// The CA key

export class CertificateAuthority {
  readonly publicKey: Uint8Array;
  readonly keyId: Uint8Array;

  private constructor(private readonly signingKey: KeyObject, readonly name: string) {
    checkName(name);
    this.publicKey = rawPublic(createPublicKey(signingKey));
    this.keyId = caKeyId(this.publicKey);
  }

  static generate(name: string): CertificateAuthority {
    return new CertificateAuthority(generateKeyPairSync('ed25519').privateKey, name);
  }

  static fromSeed(seed: Uint8Array, name: string): CertificateAuthority {
    let k: KeyObject;
    try { k = ed25519FromSeed(seed); } catch (e) { throw new CertificateError('malformed', `invalid CA private key: ${(e as Error).message}`); }
    return new CertificateAuthority(k, name);
  }

  sign(data: Uint8Array): Uint8Array { return ed25519Sign(this.signingKey, data); }

  /** The ca.key file text; contains the private key. */
  serialize(): string {
    const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
    return JSON.stringify({
      format: CA_KEY_FORMAT, version: 1, name: this.name, keyId: hex(this.keyId),
      ed25519: { private: b64(rawPrivate(this.signingKey)), public: b64(this.publicKey) },
    }, null, 2) + '\n';
  }

  static parse(text: string, where = 'CA key'): CertificateAuthority {
    let j: unknown;
    try { j = JSON.parse(text); } catch { throw new CertificateError('malformed', `${where}: not valid JSON (corrupt CA key file?)`); }
    const o = j as { format?: unknown; version?: unknown; name?: unknown; ed25519?: Record<string, unknown> };
    if (typeof o !== 'object' || o === null || o.format !== CA_KEY_FORMAT) throw new CertificateError('malformed', `${where}: not a ${CA_KEY_FORMAT} file`);
    if (o.version !== 1) throw new CertificateError('unsupported-version', `${where}: unsupported CA key version ${String(o.version)}`);
    if (typeof o.name !== 'string') throw new CertificateError('malformed', `${where}: name missing`);
    const key = (field: string): Uint8Array => {
      const v = o.ed25519?.[field];
      if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new CertificateError('malformed', `${where}: ed25519.${field} missing or not base64`);
      const b = Buffer.from(v, 'base64');
      if (b.length !== 32) throw new CertificateError('malformed', `${where}: ed25519.${field} must be 32 bytes, got ${b.length}`);
      return new Uint8Array(b);
    };
    const ca = CertificateAuthority.fromSeed(key('private'), o.name);
    if (o.ed25519?.public !== undefined && !bytesEqual(key('public'), ca.publicKey)) {
      throw new CertificateError('malformed', `${where}: ed25519.public does not match the private key (corrupt file)`);
    }
    return ca;
  }
}

export interface CreatedCa {
  ca: CertificateAuthority;
  /** The CA certificate (self-signed, kind CA): the public ca.pub file members configure. */
  certificate: Uint8Array;
}

export interface SignOptions {
  /** Signing time; default Date.now(). */
  now?: number;
  /** Default now − NOT_BEFORE_BACKDATE_MS. */
  notBefore?: number;
  random?: RandomSource;
}

/** A new CA key and its self-signed CA certificate, valid `validDays` (default 10 years). */
export function createCa(name: string, validDays = DEFAULT_CA_VALID_DAYS, o: SignOptions = {}): CreatedCa {
  const ca = CertificateAuthority.generate(name);
  return { ca, certificate: issue(ca, KIND_CA, ca.publicKey, name, validDays, o) };
}

/** The CA certificate (ca.pub) of an existing CA key. */
export function caCertificate(ca: CertificateAuthority, validDays = DEFAULT_CA_VALID_DAYS, o: SignOptions = {}): Uint8Array {
  return issue(ca, KIND_CA, ca.publicKey, ca.name, validDays, o);
}

/** A member certificate for `memberPublicKey` (a node's Ed25519 key), valid `validDays`. */
export function signMember(ca: CertificateAuthority, memberPublicKey: Uint8Array, name: string, validDays: number, o: SignOptions = {}): Uint8Array {
  return issue(ca, KIND_MEMBER, memberPublicKey, name, validDays, o);
}

function issue(ca: CertificateAuthority, kind: number, subject: Uint8Array, name: string, validDays: number, o: SignOptions): Uint8Array {
  if (subject.length !== 32) throw new CertificateError('malformed', `subject public key must be 32 bytes, got ${subject.length}`);
  if (!(validDays > 0) || !Number.isFinite(validDays)) throw new CertificateError('malformed', `validity must be a positive number of days, got ${validDays}`);
  const nb = checkName(name);
  const now = Math.floor(o.now ?? Date.now());
  const notBefore = Math.max(0, Math.floor(o.notBefore ?? now - NOT_BEFORE_BACKDATE_MS));
  const notAfter = Math.floor(now + validDays * DAY_MS);
  if (notAfter <= notBefore) throw new CertificateError('malformed', 'notAfter must be after notBefore');
  if (notAfter > Number.MAX_SAFE_INTEGER) throw new CertificateError('malformed', 'validity too long');
  const serialBytes = (o.random ?? cryptoRandom).bytes(8);
  const body = new Uint8Array(91 + nb.length);
  const dv = new DataView(body.buffer);
  body.set(utf8.encode(CERT_MAGIC), 0);
  body[4] = CERT_VERSION;
  body[5] = kind;
  body.set(ca.keyId, 6);
  body.set(subject, 14);
  body.set(addressOf(subject).bytes, 46);
  body[66] = nb.length;
  body.set(nb, 67);
  dv.setBigUint64(67 + nb.length, BigInt(notBefore));
  dv.setBigUint64(75 + nb.length, BigInt(notAfter));
  body.set(serialBytes, 83 + nb.length);
  const out = new Uint8Array(body.length + SIG_LEN);
  out.set(body);
  out.set(ca.sign(body), body.length);
  return out;
}

// ---------------------------------------------------------------------------------------
// Decoding and verification

export interface Certificate {
  version: number;
  kind: number;
  caKeyId: Uint8Array;
  publicKey: Uint8Array;
  /** The address field as carried (verifyCertificate checks it against the key). */
  address: Address;
  name: string;
  notBefore: number;
  notAfter: number;
  serial: bigint;
  /** The signed bytes and the signature. */
  signed: Uint8Array;
  signature: Uint8Array;
}

export interface VerifiedCertificate {
  address: Address;
  publicKey: Uint8Array;
  name: string;
  serial: bigint;
  notBefore: number;
  notAfter: number;
  kind: number;
}

function magicIs(b: Uint8Array, magic: string): boolean {
  return b.length >= 4 && b[0] === magic.charCodeAt(0) && b[1] === magic.charCodeAt(1) && b[2] === magic.charCodeAt(2) && b[3] === magic.charCodeAt(3);
}

/** Raw bytes of a certificate or list file, which may also be base64 text. */
export function fileBytes(data: Uint8Array, magic: string): Uint8Array {
  if (magicIs(data, magic)) return data;
  const text = Buffer.from(data).toString('latin1').replace(/\s+/g, '');
  if (text.length > 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    const b = new Uint8Array(Buffer.from(text, 'base64'));
    if (magicIs(b, magic)) return b;
  }
  return data;
}

function u64(dv: DataView, off: number, what: string): number {
  const v = dv.getBigUint64(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CertificateError('malformed', `${what} out of range`);
  return Number(v);
}

/** Parses a certificate without checking its signature or validity. */
export function decodeCertificate(data: Uint8Array): Certificate {
  const b = fileBytes(data, CERT_MAGIC);
  if (!magicIs(b, CERT_MAGIC)) throw new CertificateError('malformed', 'not a brunet-ts certificate (bad magic)');
  if (b.length < 5) throw new WireError(`certificate truncated: ${b.length} bytes`);
  if (b[4] !== CERT_VERSION) throw new CertificateError('unsupported-version', `unsupported certificate version ${b[4]}`);
  if (b.length < CERT_FIXED) throw new WireError(`certificate truncated: ${b.length} bytes`);
  const n = b[66]!;
  if (n > MAX_NAME_BYTES) throw new CertificateError('malformed', `certificate name of ${n} bytes exceeds ${MAX_NAME_BYTES}`);
  if (b.length < CERT_FIXED + n) throw new WireError(`certificate truncated: ${b.length} bytes, need ${CERT_FIXED + n}`);
  if (b.length > CERT_FIXED + n) throw new WireError(`certificate has ${b.length - CERT_FIXED - n} trailing bytes`);
  const kind = b[5]!;
  if (kind !== KIND_MEMBER && kind !== KIND_CA) throw new CertificateError('malformed', `unknown certificate kind ${kind}`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let name: string;
  try { name = utf8strict.decode(b.subarray(67, 67 + n)); } catch { throw new CertificateError('malformed', 'certificate name is not valid UTF-8'); }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) throw new CertificateError('malformed', 'certificate name contains control characters');
  const notBefore = u64(dv, 67 + n, 'notBefore');
  const notAfter = u64(dv, 75 + n, 'notAfter');
  if (notAfter <= notBefore) throw new CertificateError('malformed', 'certificate notAfter is not after notBefore');
  const publicKey = b.slice(14, 46);
  let address: Address;
  try { address = Address.fromBytes(b.subarray(46, 66)); } catch (e) { throw new CertificateError('malformed', `certificate address: ${(e as Error).message}`); }
  return {
    version: b[4]!, kind, caKeyId: b.slice(6, 14), publicKey, address, name, notBefore, notAfter,
    serial: dv.getBigUint64(83 + n), signed: b.slice(0, 91 + n), signature: b.slice(91 + n),
  };
}

export interface VerifyOptions {
  /** Default KIND_MEMBER. */
  kind?: number;
}

/**
 * Verifies `cert` was issued by the CA with `caPublicKey` and is valid at `now`; returns the
 * subject. Throws CertificateError (reason: malformed, unsupported-version, wrong-ca,
 * bad-signature, address-mismatch, wrong-kind, not-yet-valid, expired).
 */
export function verifyCertificate(cert: Uint8Array, caPublicKey: Uint8Array, now: number, o: VerifyOptions = {}): VerifiedCertificate {
  let c: Certificate;
  try { c = decodeCertificate(cert); } catch (e) {
    if (e instanceof WireError) throw new CertificateError('malformed', `malformed certificate: ${e.message}`);
    throw e;
  }
  if (!bytesEqual(c.caKeyId, caKeyId(caPublicKey))) {
    throw new CertificateError('wrong-ca', `certificate issued by another CA (key id ${hex(c.caKeyId)}, expected ${hex(caKeyId(caPublicKey))})`);
  }
  if (!ed25519Verify(caPublicKey, c.signed, c.signature)) throw new CertificateError('bad-signature', 'certificate signature invalid');
  if (!c.address.equals(addressOf(c.publicKey))) throw new CertificateError('address-mismatch', `certificate address ${c.address} does not match its key (${addressOf(c.publicKey)})`);
  const kind = o.kind ?? KIND_MEMBER;
  if (c.kind !== kind) throw new CertificateError('wrong-kind', `expected a ${kindName(kind)} certificate, got a ${kindName(c.kind)} certificate`);
  if (now < c.notBefore) throw new CertificateError('not-yet-valid', `certificate not valid before ${new Date(c.notBefore).toISOString()}`);
  if (now >= c.notAfter) throw new CertificateError('expired', `certificate expired at ${new Date(c.notAfter).toISOString()}`);
  return { address: c.address, publicKey: c.publicKey, name: c.name, serial: c.serial, notBefore: c.notBefore, notAfter: c.notAfter, kind: c.kind };
}

export function kindName(kind: number): string {
  return kind === KIND_MEMBER ? 'member' : kind === KIND_CA ? 'CA' : `kind-${kind}`;
}

export interface CaInfo {
  publicKey: Uint8Array;
  keyId: Uint8Array;
  name: string;
  notAfter: number;
}

/**
 * Reads a CA certificate (ca.pub): checks it is a self-signed CA certificate. Its expiry is
 * returned, not enforced (a CA is retired by distributing a new ca.pub, not by a clock).
 */
export function readCaCertificate(data: Uint8Array): CaInfo {
  let c: Certificate;
  try { c = decodeCertificate(data); } catch (e) {
    if (e instanceof WireError) throw new CertificateError('malformed', `malformed CA certificate: ${e.message}`);
    throw e;
  }
  if (c.kind !== KIND_CA) throw new CertificateError('wrong-kind', `not a CA certificate (it is a ${kindName(c.kind)} certificate)`);
  if (!bytesEqual(c.caKeyId, caKeyId(c.publicKey))) throw new CertificateError('wrong-ca', 'CA certificate is not self-issued');
  if (!ed25519Verify(c.publicKey, c.signed, c.signature)) throw new CertificateError('bad-signature', 'CA certificate self-signature invalid');
  return { publicKey: c.publicKey, keyId: c.caKeyId, name: c.name, notAfter: c.notAfter };
}

// ---------------------------------------------------------------------------------------
// Revocation lists

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

/** Signs a revocation list issued at `issuedAt` (ms epoch). */
export function signRevocations(ca: CertificateAuthority, revoked: RevocationInput, issuedAt: number): Uint8Array {
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
  out.set(ca.keyId, 5);
  dv.setBigUint64(13, BigInt(issuedAt));
  dv.setUint32(21, serials.length);
  let off = 25;
  for (const s of serials) { dv.setBigUint64(off, s); off += 8; }
  dv.setUint32(off, keyHex.length); off += 4;
  for (const k of keyHex) { out.set(Buffer.from(k, 'hex'), off); off += 32; }
  out.set(ca.sign(out.subarray(0, bodyLen)), bodyLen);
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

/** Verifies a revocation list signed by the CA with `caPublicKey`; throws CertificateError. */
export function verifyRevocations(data: Uint8Array, caPublicKey: Uint8Array): RevocationList {
  let r: ReturnType<typeof decodeRevocations>;
  try { r = decodeRevocations(data); } catch (e) {
    if (e instanceof WireError) throw new CertificateError('malformed', `malformed revocation list: ${e.message}`);
    throw e;
  }
  if (!bytesEqual(r.caKeyId, caKeyId(caPublicKey))) throw new CertificateError('wrong-ca', `revocation list issued by another CA (key id ${hex(r.caKeyId)})`);
  if (!ed25519Verify(caPublicKey, r.signed, r.signature)) throw new CertificateError('bad-signature', 'revocation list signature invalid');
  return { caKeyId: r.caKeyId, issuedAt: r.issuedAt, serials: r.serials, keys: r.keys };
}

// ---------------------------------------------------------------------------------------
// The admission hook

export interface MembershipOptions {
  caPublicKey: Uint8Array;
  /** The current revocations (e.g. `watcher.revoked`); default none. */
  revocations?: () => Revoked;
  clock: Clock;
}

/** Short refusal reasons sent to the peer (in the sealed ABORT) and logged. */
const REFUSAL: Record<CertificateFailure, string> = {
  'malformed': 'malformed certificate',
  'unsupported-version': 'unsupported certificate version',
  'wrong-kind': 'not a member certificate',
  'wrong-ca': 'certificate from another CA',
  'bad-signature': 'certificate signature invalid',
  'address-mismatch': 'certificate address does not match its key',
  'expired': 'certificate expired',
  'not-yet-valid': 'certificate not yet valid',
  'key-mismatch': 'certificate is for another key',
  'revoked': 'revoked',
  'stale': 'stale',
};

/**
 * Checks a peer's membership: a certificate of our CA, valid now, for the key the peer
 * proved in the handshake, and not revoked. Returns null (admit) or the refusal reason.
 */
export function checkMembership(info: PeerInfo, o: MembershipOptions): string | null {
  if (!info.certificate || info.certificate.length === 0) return 'no certificate';
  let c: VerifiedCertificate;
  try { c = verifyCertificate(info.certificate, o.caPublicKey, o.clock.now()); } catch (e) {
    if (e instanceof CertificateError) return REFUSAL[e.reason];
    return 'malformed certificate';
  }
  if (!bytesEqual(c.publicKey, info.publicKey)) return REFUSAL['key-mismatch'];
  if (isRevoked(o.revocations?.() ?? NO_REVOCATIONS, c.serial, c.publicKey)) return `revoked (${c.name || 'member'}, serial ${formatSerial(c.serial)})`;
  return null;
}

/** The SecureEdgeListener `verifyPeer` hook for group membership. */
export function membershipVerifier(o: MembershipOptions): VerifyPeer {
  return (info) => checkMembership(info, o);
}

/**
 * Checks this node's own certificate before presenting it: ours (same key), of our CA,
 * currently valid. Throws CertificateError; returns the subject (e.g. to warn on expiry).
 */
export function checkOwnCertificate(cert: Uint8Array, caPublicKey: Uint8Array, ownPublicKey: Uint8Array, now: number): VerifiedCertificate {
  const c = verifyCertificate(cert, caPublicKey, now);
  if (!bytesEqual(c.publicKey, ownPublicKey)) {
    throw new CertificateError('key-mismatch', `certificate is for ${c.address}, but this node's key is ${addressOf(ownPublicKey)}`);
  }
  return c;
}

// ---------------------------------------------------------------------------------------
// Files

/** Writes `data` atomically (temp file + rename) with `mode`. */
export function writeFileAtomic(file: string, data: Uint8Array | string, mode = 0o644): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode);
  try {
    fs.fchmodSync(fd, mode);
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    try { fs.unlinkSync(tmp); } catch { /* best effort */ }
    throw e;
  }
  fs.closeSync(fd);
  try { fs.renameSync(tmp, file); } catch (e) {
    try { fs.unlinkSync(tmp); } catch { /* best effort */ }
    throw e;
  }
}

/** Loads a ca.key file; refuses one readable or writable by group/others. */
export function loadCaKey(file: string): CertificateAuthority {
  let st: fs.Stats;
  let text: string;
  try {
    st = fs.statSync(file);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new CertificateError('malformed', `cannot read CA key ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    throw new CertificateError('malformed', `CA key ${file} has permissions ${mode}; it holds the CA private key and must be 0600 (chmod 600 ${file})`);
  }
  return CertificateAuthority.parse(text, `CA key ${file}`);
}

/** Reads and checks a CA certificate file (ca.pub). */
export function loadCaCertificate(file: string): CaInfo {
  let data: Buffer;
  try { data = fs.readFileSync(file); } catch (e) {
    throw new CertificateError('malformed', `cannot read CA certificate ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try { return readCaCertificate(new Uint8Array(data)); } catch (e) {
    if (e instanceof CertificateError) throw new CertificateError(e.reason, `CA certificate ${file}: ${e.message}`);
    throw e;
  }
}

/** Reads a certificate file's bytes (binary or base64), without verifying it. */
export function readCertificateFile(file: string): Uint8Array {
  let data: Buffer;
  try { data = fs.readFileSync(file); } catch (e) {
    throw new CertificateError('malformed', `cannot read certificate ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return fileBytes(new Uint8Array(data), CERT_MAGIC);
}
