// The device certificate: the user key vouches that a node key (named by its node address,
// which the secure edge authenticates) is one of the user's devices, until it expires.
// Binary, big-endian, version 1:
//   offset  size  field
//   0       1     version (1)
//   1       32    user Ed25519 public key
//   33      1     user name length u (1..32)
//   34      u     user name (a-z 0-9 -)
//   34+u    1     device name length d (1..63)
//   35+u    d     device name (a DNS label: a-z 0-9 -)
//   35+u+d  20    node address
//   55+u+d  8     issued at (unix seconds, u64)
//   63+u+d  8     expires at (unix seconds, u64, > issued at)
//   71+u+d  64    Ed25519 signature by the user key over SIGN_DOMAIN || bytes [0, 71+u+d)
// Nothing may follow the signature. decodeDeviceCert checks the form; verifyDeviceCert the
// signature and the time.
import { Address, ADDRESS_BYTES } from '../../address/address.js';
import { deviceNameProblem } from '../../config/socialvpn-config.js';
import { ed25519Verify } from '../../edge/primitives.js';
import { SocialError } from './social-error.js';
import { userNameProblem, type UserKey } from './user-key.js';

export const DEVICE_CERT_VERSION = 1;
export const SIGN_DOMAIN = new TextEncoder().encode('brunet-ts svpn device cert v1\0');
export const DEFAULT_CERT_LIFETIME_S = 7 * 86400;
/** Clock skew tolerated for a certificate issued "in the future" by another device. */
export const CERT_SKEW_S = 300;
const SIG_LEN = 64;
const MIN_LEN = 1 + 32 + 1 + 1 + 1 + 1 + ADDRESS_BYTES + 8 + 8 + SIG_LEN;
const MAX_LEN = MIN_LEN - 2 + 32 + 63;

export class DeviceCertError extends SocialError {
  override name = 'DeviceCertError';
}

export interface DeviceCert {
  readonly version: number;
  readonly userPublicKey: Uint8Array;
  readonly userName: string;
  readonly deviceName: string;
  readonly nodeAddress: Address;
  /** Unix seconds. */
  readonly issuedAt: number;
  /** Unix seconds. */
  readonly expiresAt: number;
  readonly signature: Uint8Array;
  /** The whole encoded certificate, as sent. */
  readonly bytes: Uint8Array;
}

export type CertVerdict = { ok: true } | { ok: false; reason: 'bad signature' | 'expired' | 'not yet valid' | 'wrong node address' };

/** The signed part: everything before the signature. */
function encodeBody(userKey: Uint8Array, userName: string, deviceName: string, node: Address, issuedAt: number, expiresAt: number): Uint8Array {
  const u = Buffer.from(userName, 'ascii'), d = Buffer.from(deviceName, 'ascii');
  const b = Buffer.alloc(MIN_LEN - 2 - SIG_LEN + u.length + d.length);
  let o = b.writeUInt8(DEVICE_CERT_VERSION, 0);
  b.set(userKey, o); o += 32;
  o = b.writeUInt8(u.length, o); b.set(u, o); o += u.length;
  o = b.writeUInt8(d.length, o); b.set(d, o); o += d.length;
  b.set(node.bytes, o); o += ADDRESS_BYTES;
  o = b.writeBigUInt64BE(BigInt(issuedAt), o);
  b.writeBigUInt64BE(BigInt(expiresAt), o);
  return new Uint8Array(b);
}

const signedData = (body: Uint8Array): Uint8Array => Buffer.concat([SIGN_DOMAIN, body]);

/** A certificate for `deviceName` at `nodeAddress`, valid from now for `lifetimeS` seconds. */
export function issueDeviceCert(userKey: UserKey, deviceName: string, nodeAddress: Address, nowMs: number, lifetimeS = DEFAULT_CERT_LIFETIME_S): DeviceCert {
  const bad = deviceNameProblem(deviceName);
  if (bad) throw new DeviceCertError(bad);
  if (!Number.isSafeInteger(lifetimeS) || lifetimeS < 1) throw new DeviceCertError(`certificate lifetime must be a whole number of seconds >= 1, got ${lifetimeS}`);
  const issuedAt = Math.floor(nowMs / 1000);
  const body = encodeBody(userKey.publicKey, userKey.name, deviceName, nodeAddress, issuedAt, issuedAt + lifetimeS);
  const signature = userKey.sign(signedData(body));
  return decodeDeviceCert(Buffer.concat([body, signature]));
}

/** Decodes a certificate's form (not its signature); DeviceCertError for any malformed input. */
export function decodeDeviceCert(bytes: Uint8Array): DeviceCert {
  const fail = (why: string): never => { throw new DeviceCertError(`device certificate: ${why}`); };
  if (!(bytes instanceof Uint8Array)) fail('not bytes');
  if (bytes.length < MIN_LEN) fail(`${bytes.length} bytes, too short (at least ${MIN_LEN})`);
  if (bytes.length > MAX_LEN) fail(`${bytes.length} bytes, too long (at most ${MAX_LEN})`);
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (b[0] !== DEVICE_CERT_VERSION) fail(`unsupported version ${b[0]}`);
  let o = 1;
  const userPublicKey = new Uint8Array(b.subarray(o, o + 32)); o += 32;
  const str = (max: number, what: string): string => {
    const n = b[o]!;
    if (n < 1 || n > max) fail(`${what} length ${n} out of range 1..${max}`);
    if (o + 1 + n > b.length) fail(`${what} runs past the end`);
    const s = b.subarray(o + 1, o + 1 + n).toString('latin1');
    o += 1 + n;
    return s;
  };
  const userName = str(32, 'user name');
  const badUser = userNameProblem(userName);
  if (badUser) fail(badUser);
  const deviceName = str(63, 'device name');
  const badDev = deviceNameProblem(deviceName);
  if (badDev) fail(badDev);
  if (b.length !== o + ADDRESS_BYTES + 16 + SIG_LEN) fail(`length ${b.length} does not match its names (expected ${o + ADDRESS_BYTES + 16 + SIG_LEN})`);
  const nodeAddress = Address.fromBytes(new Uint8Array(b.subarray(o, o + ADDRESS_BYTES))); o += ADDRESS_BYTES;
  const time = (what: string): number => {
    const v = b.readBigUInt64BE(o); o += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} ${v} out of range`);
    return Number(v);
  };
  const issuedAt = time('issued-at');
  const expiresAt = time('expiry');
  if (expiresAt <= issuedAt) fail(`expires (${expiresAt}) before it is issued (${issuedAt})`);
  const signature = new Uint8Array(b.subarray(o, o + SIG_LEN));
  return { version: DEVICE_CERT_VERSION, userPublicKey, userName, deviceName, nodeAddress, issuedAt, expiresAt, signature, bytes: new Uint8Array(b) };
}

/**
 * Is `cert` signed by the user key it names and valid at `nowMs`? With `nodeAddress`, also:
 * is it the certificate of that node (the peer the secure edge authenticated)?
 */
export function verifyDeviceCert(cert: DeviceCert, nowMs: number, o: { nodeAddress?: Address } = {}): CertVerdict {
  const body = cert.bytes.subarray(0, cert.bytes.length - SIG_LEN);
  if (!ed25519Verify(cert.userPublicKey, signedData(body), cert.signature)) return { ok: false, reason: 'bad signature' };
  const now = Math.floor(nowMs / 1000);
  if (now >= cert.expiresAt) return { ok: false, reason: 'expired' };
  if (now + CERT_SKEW_S < cert.issuedAt) return { ok: false, reason: 'not yet valid' };
  if (o.nodeAddress && !o.nodeAddress.equals(cert.nodeAddress)) return { ok: false, reason: 'wrong node address' };
  return { ok: true };
}

/** True once half of the certificate's lifetime has passed: time to issue a new one. */
export function needsRenewal(cert: DeviceCert, nowMs: number): boolean {
  return nowMs / 1000 >= cert.issuedAt + (cert.expiresAt - cert.issuedAt) / 2;
}
