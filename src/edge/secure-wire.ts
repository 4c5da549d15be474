// Packet formats of the secure-edge layer (all integers big-endian). Every packet carried
// on a wrapped edge starts with a type byte.
//
// Handshake packets; byte 1 is the wire version (SECURE_WIRE_VERSION = 1), so a peer
// speaking another version is told apart from garbage:
//   0x01 HELLO   type | ver | cookieLen u8 (0 or 16) | cookie | Noise message 1 (48 bytes: e + tag)
//   0x02 RETRY   type | ver | cookie (16)                  stateless reply to a HELLO without a valid cookie
//   0x03 REPLY   type | ver | Noise message 2 (e, encrypted s, encrypted identity payload)
//   0x04 FINISH  type | ver | Noise message 3 (encrypted s, encrypted identity payload)
//   0x05 ABORT   type | ver | code u8 | ChaCha20-Poly1305(abort key, nonce 0, AD = first 3 bytes, reason UTF-8)
//
// Transport packets (the version is the one the handshake agreed on):
//   0x10 DATA    type | epoch u8 | counter u64 | ciphertext || tag    (AD = these 10 header bytes)
//   0x11 CONFIRM same layout, empty plaintext: the responder's "I accepted your message 3"
//
// Identity payload (the plaintext of the Noise payload in messages 2 and 3):
//   ver u8 (1) | Ed25519 public key (32) | Ed25519 signature (64) | certLen u16 | certificate
// The signature covers the Noise handshake hash at the moment the payload is encrypted,
// followed by the sender's static X25519 public key.
//
// The cookie, RETRY and ABORT sit outside the Noise transcript (as in WireGuard).
import { WireError } from '../wire/value.js';

export const SECURE_WIRE_VERSION = 1;
export const T_HELLO = 0x01, T_RETRY = 0x02, T_REPLY = 0x03, T_FINISH = 0x04, T_ABORT = 0x05;
export const T_DATA = 0x10, T_CONFIRM = 0x11;
export const COOKIE_LEN = 16;
export const NOISE_MSG1_LEN = 48;
export const DATA_HEADER = 10;
export const MAX_CERTIFICATE = 8192;
/** Identity payload: its version, and its size without the certificate. */
export const IDENTITY_VERSION = 1, IDENTITY_FIXED = 1 + 32 + 64 + 2;
/** Sanity bound for Noise messages 2/3: keys, tags, identity and certificate. */
const MAX_NOISE_MSG = 128 + 104 + MAX_CERTIFICATE;

/** Abort codes. */
export const ABORT_AUTH = 1, ABORT_IDENTITY = 2, ABORT_REFUSED = 3, ABORT_PROTOCOL = 4;

export type HandshakePacket =
  | { type: typeof T_HELLO; cookie: Uint8Array | undefined; noise: Uint8Array }
  | { type: typeof T_RETRY; cookie: Uint8Array }
  | { type: typeof T_REPLY | typeof T_FINISH; noise: Uint8Array }
  | { type: typeof T_ABORT; code: number; header: Uint8Array; sealed: Uint8Array };

export function isTransportType(t: number | undefined): boolean {
  return t === T_DATA || t === T_CONFIRM;
}

export function encodeHello(cookie: Uint8Array | undefined, noise: Uint8Array): Uint8Array {
  const c = cookie ?? new Uint8Array(0);
  if (c.length !== 0 && c.length !== COOKIE_LEN) throw new WireError(`cookie must be ${COOKIE_LEN} bytes`);
  const out = new Uint8Array(3 + c.length + noise.length);
  out[0] = T_HELLO; out[1] = SECURE_WIRE_VERSION; out[2] = c.length;
  out.set(c, 3);
  out.set(noise, 3 + c.length);
  return out;
}

export function encodeRetry(cookie: Uint8Array): Uint8Array {
  if (cookie.length !== COOKIE_LEN) throw new WireError(`cookie must be ${COOKIE_LEN} bytes`);
  const out = new Uint8Array(2 + COOKIE_LEN);
  out[0] = T_RETRY; out[1] = SECURE_WIRE_VERSION;
  out.set(cookie, 2);
  return out;
}

export function encodeNoise(type: typeof T_REPLY | typeof T_FINISH, noise: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + noise.length);
  out[0] = type; out[1] = SECURE_WIRE_VERSION;
  out.set(noise, 2);
  return out;
}

export function abortHeader(code: number): Uint8Array {
  return Uint8Array.of(T_ABORT, SECURE_WIRE_VERSION, code);
}

export function encodeAbort(code: number, sealed: Uint8Array): Uint8Array {
  const out = new Uint8Array(3 + sealed.length);
  out.set(abortHeader(code), 0);
  out.set(sealed, 3);
  return out;
}

/** Decodes any handshake packet; throws WireError for anything malformed. */
export function decodeHandshake(p: Uint8Array): HandshakePacket {
  if (p.length < 2) throw new WireError('secure packet truncated');
  const type = p[0]!;
  if (type < T_HELLO || type > T_ABORT) throw new WireError(`not a handshake packet (type 0x${type.toString(16)})`);
  if (p[1] !== SECURE_WIRE_VERSION) throw new WireError(`unsupported secure-edge wire version ${p[1]}`);
  switch (type) {
    case T_HELLO: {
      if (p.length < 3) throw new WireError('hello truncated');
      const cl = p[2]!;
      if (cl !== 0 && cl !== COOKIE_LEN) throw new WireError(`hello cookie length ${cl}`);
      if (p.length !== 3 + cl + NOISE_MSG1_LEN) throw new WireError(`hello must be ${3 + cl + NOISE_MSG1_LEN} bytes, got ${p.length}`);
      return { type, cookie: cl ? p.slice(3, 3 + cl) : undefined, noise: p.slice(3 + cl) };
    }
    case T_RETRY:
      if (p.length !== 2 + COOKIE_LEN) throw new WireError(`retry must be ${2 + COOKIE_LEN} bytes, got ${p.length}`);
      return { type, cookie: p.slice(2) };
    case T_REPLY:
    case T_FINISH:
      if (p.length < 2 + 48 + 16 || p.length > 2 + MAX_NOISE_MSG) throw new WireError(`handshake message of ${p.length} bytes`);
      return { type, noise: p.slice(2) };
    default:
      if (p.length < 3 + 16 || p.length > 3 + 16 + 1024) throw new WireError(`abort of ${p.length} bytes`);
      return { type: T_ABORT, code: p[2]!, header: p.slice(0, 3), sealed: p.slice(3) };
  }
}

export interface DataHeader {
  type: number;
  epoch: number;
  counter: number;
}

export function encodeDataHeader(h: DataHeader): Uint8Array {
  const out = new Uint8Array(DATA_HEADER);
  writeDataHeader(out, h);
  return out;
}

/** Writes the 10-byte DATA/CONFIRM header into the first bytes of out (a packet being built). */
export function writeDataHeader(out: Uint8Array, h: DataHeader): void {
  if (!isTransportType(h.type)) throw new WireError(`not a transport type: ${h.type}`);
  if (!Number.isSafeInteger(h.counter) || h.counter < 0) throw new WireError(`counter ${h.counter} out of range`);
  if (out.length < DATA_HEADER) throw new WireError('no room for a transport header');
  const hi = Math.floor(h.counter / 0x100000000), lo = h.counter >>> 0;
  out[0] = h.type;
  out[1] = h.epoch & 0xff;
  out[2] = hi >>> 24; out[3] = (hi >>> 16) & 0xff; out[4] = (hi >>> 8) & 0xff; out[5] = hi & 0xff;
  out[6] = lo >>> 24; out[7] = (lo >>> 16) & 0xff; out[8] = (lo >>> 8) & 0xff; out[9] = lo & 0xff;
}

/** Parses the 10-byte header of a DATA/CONFIRM packet (the rest must hold at least a tag). */
export function decodeDataHeader(p: Uint8Array): DataHeader {
  if (p.length < DATA_HEADER + 16) throw new WireError(`transport packet of ${p.length} bytes is too short`);
  const type = p[0]!;
  if (!isTransportType(type)) throw new WireError(`not a transport packet (type 0x${type.toString(16)})`);
  // Big-endian u32s read byte by byte (no DataView per packet).
  const hi = ((p[2]! << 24) | (p[3]! << 16) | (p[4]! << 8) | p[5]!) >>> 0;
  // Senders rekey long before 2^53 packets; a larger counter is malformed, not a replay.
  if (hi >= 0x200000) throw new WireError('transport counter out of range');
  const lo = ((p[6]! << 24) | (p[7]! << 16) | (p[8]! << 8) | p[9]!) >>> 0;
  return { type, epoch: p[1]!, counter: hi * 0x100000000 + lo };
}

export interface IdentityPayload {
  publicKey: Uint8Array;
  signature: Uint8Array;
  certificate: Uint8Array | undefined;
}

export function encodeIdentity(id: IdentityPayload): Uint8Array {
  const cert = id.certificate ?? new Uint8Array(0);
  if (id.publicKey.length !== 32 || id.signature.length !== 64) throw new WireError('identity key/signature of wrong size');
  if (cert.length > MAX_CERTIFICATE) throw new WireError(`certificate of ${cert.length} bytes exceeds ${MAX_CERTIFICATE}`);
  const out = new Uint8Array(IDENTITY_FIXED + cert.length);
  out[0] = IDENTITY_VERSION;
  out.set(id.publicKey, 1);
  out.set(id.signature, 33);
  out[97] = cert.length >>> 8; out[98] = cert.length & 0xff;
  out.set(cert, IDENTITY_FIXED);
  return out;
}

export function decodeIdentity(p: Uint8Array): IdentityPayload {
  if (p.length < IDENTITY_FIXED) throw new WireError('identity payload truncated');
  if (p[0] !== IDENTITY_VERSION) throw new WireError(`unsupported identity payload version ${p[0]}`);
  const cl = (p[97]! << 8) | p[98]!;
  if (cl > MAX_CERTIFICATE) throw new WireError(`certificate of ${cl} bytes exceeds ${MAX_CERTIFICATE}`);
  if (p.length !== IDENTITY_FIXED + cl) throw new WireError(`identity payload length ${p.length}, expected ${IDENTITY_FIXED + cl}`);
  return { publicKey: p.slice(1, 33), signature: p.slice(33, 97), certificate: cl ? p.slice(IDENTITY_FIXED) : undefined };
}
