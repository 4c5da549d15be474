// Group membership by certificate authority: a group CA (an Ed25519 key, authority.ts)
// signs member certificates binding a node's Ed25519 key and address to a member name and
// a validity window, and signs revocation lists (crl.ts). Secure edges carry the
// certificate in the handshake identity payload; verify.ts checks both formats and holds
// the SecureEdgeListener `verifyPeer` hook that admits only holders of a valid, unrevoked
// certificate of our CA for the key they proved.
//
// This file: the certificate format. All integers big-endian. Times are u64 milliseconds
// since the Unix epoch. The CA key id is the first 8 bytes of SHA-256(CA Ed25519 public
// key). The signature is Ed25519 by the CA over every byte before it; the leading magic
// separates the signed formats, so a signature over one can never be replayed as another.
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
// Certificate and list files are written in the binary form; the readers also accept the
// same bytes base64-encoded (e.g. pasted into a config or a terminal).
import fs from 'node:fs';
import { Address } from '../../address/address.js';
import { WireError } from '../../wire/value.js';
import { addressOf } from '../identity.js';
import { sha256 } from '../primitives.js';
import { CertificateError } from './errors.js';

export const CERT_MAGIC = 'BRNC';
export const CERT_VERSION = 1;
export const KIND_MEMBER = 1;
export const KIND_CA = 2;
export const KEY_ID_LEN = 8;
export const MAX_NAME_BYTES = 64;
export const SIG_LEN = 64;
const CERT_FIXED = 91 + SIG_LEN;

const utf8 = new TextEncoder();
const utf8strict = new TextDecoder('utf-8', { fatal: true });

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

export function kindName(kind: number): string {
  return kind === KIND_MEMBER ? 'member' : kind === KIND_CA ? 'CA' : `kind-${kind}`;
}

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

/** What the issuer puts in a certificate; the address is derived from the key. */
export interface CertificateFields {
  kind: number;
  caKeyId: Uint8Array;
  publicKey: Uint8Array;
  name: string;
  notBefore: number;
  notAfter: number;
  /** 8 bytes. */
  serial: Uint8Array;
}

/** Encodes `f` and appends `sign(body)`, the CA's signature over the body. */
export function encodeCertificate(f: CertificateFields, sign: (body: Uint8Array) => Uint8Array): Uint8Array {
  const nb = checkName(f.name);
  const body = new Uint8Array(91 + nb.length);
  const dv = new DataView(body.buffer);
  body.set(utf8.encode(CERT_MAGIC), 0);
  body[4] = CERT_VERSION;
  body[5] = f.kind;
  body.set(f.caKeyId, 6);
  body.set(f.publicKey, 14);
  body.set(addressOf(f.publicKey).bytes, 46);
  body[66] = nb.length;
  body.set(nb, 67);
  dv.setBigUint64(67 + nb.length, BigInt(f.notBefore));
  dv.setBigUint64(75 + nb.length, BigInt(f.notAfter));
  body.set(f.serial, 83 + nb.length);
  const out = new Uint8Array(body.length + SIG_LEN);
  out.set(body);
  out.set(sign(body), body.length);
  return out;
}

export function magicIs(b: Uint8Array, magic: string): boolean {
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

/** A u64 field that must fit a JavaScript number (a time in ms). */
export function u64(dv: DataView, off: number, what: string): number {
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

/** Reads a certificate file's bytes (binary or base64), without verifying it. */
export function readCertificateFile(file: string): Uint8Array {
  let data: Buffer;
  try { data = fs.readFileSync(file); } catch (e) {
    throw new CertificateError('malformed', `cannot read certificate ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return fileBytes(new Uint8Array(data), CERT_MAGIC);
}
