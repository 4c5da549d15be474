// SocialVPN's own messages: the hello two friends' devices exchange over the connection
// between them, and the discovery record a device publishes in the DHT.
//
// Hello (payload type SocialControl, only accepted over the connection to its sender):
//   version u8 (1) | kind u8 (1 = hello) | flags u8 (bit 0: "you are my friend": I list your
//   user and your certificate checked out; bit 1: "please answer") | reserved u8 (0)
//   | own IPv4 u32 (the sender's address on its TAP) | your IPv4 u32 (the sender's local IP
//   for the receiver; 0 unless bit 0) | certificate length u16 | the sender's device certificate
//
// Discovery record (DHT, shared signed key `svpn:<locator>`; the DHT claim is signed by the
// device's node key, see dht/claims.ts):
//   version u8 (1) | nonce (12) | ChaCha20-Poly1305(device certificate) with the locator as AAD | tag (16)
// The locator and the record key are derived from the user's public key (HKDF-SHA256), so
// only those holding the user's friend code can find or read the records.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

export class SocialWireError extends Error { override name = 'SocialWireError'; }

export const HELLO_VERSION = 1;
const HELLO_KIND = 1;
const HELLO_HEADER = 14;
export const FLAG_FRIEND = 1;
export const FLAG_ANSWER = 2;
const MAX_CERT = 1024;

export interface Hello { flags: number; ownIp: number; yourIp: number; cert: Uint8Array }

export function encodeHello(h: Hello): Uint8Array {
  if (h.cert.length > MAX_CERT) throw new SocialWireError(`certificate of ${h.cert.length} bytes is too long`);
  const out = new Uint8Array(HELLO_HEADER + h.cert.length);
  const v = new DataView(out.buffer);
  out[0] = HELLO_VERSION;
  out[1] = HELLO_KIND;
  out[2] = h.flags & 3;
  v.setUint32(4, h.ownIp >>> 0);
  v.setUint32(8, h.yourIp >>> 0);
  v.setUint16(12, h.cert.length);
  out.set(h.cert, HELLO_HEADER);
  return out;
}

/** Decodes a hello; throws SocialWireError on anything malformed. */
export function decodeHello(b: Uint8Array): Hello {
  if (b.length < HELLO_HEADER) throw new SocialWireError(`hello of ${b.length} bytes is too short`);
  if (b[0] !== HELLO_VERSION) throw new SocialWireError(`unsupported hello version ${b[0]}`);
  if (b[1] !== HELLO_KIND) throw new SocialWireError(`unknown message kind ${b[1]}`);
  if ((b[2]! & ~3) !== 0 || b[3] !== 0) throw new SocialWireError('reserved bits set');
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const len = v.getUint16(12);
  if (len > MAX_CERT || HELLO_HEADER + len !== b.length) throw new SocialWireError(`certificate length ${len} does not match the message`);
  return { flags: b[2]!, ownIp: v.getUint32(4), yourIp: v.getUint32(8), cert: b.slice(HELLO_HEADER) };
}

// ---- discovery records

const SALT = Buffer.from('brunet-ts svpn discovery v1');
const derive = (userKey: Uint8Array, info: string, n: number) => new Uint8Array(hkdfSync('sha256', userKey, SALT, info, n));

/** The DHT key under which a user's devices publish their records. */
export function recordKey(userPublicKey: Uint8Array): Uint8Array {
  return new TextEncoder().encode(`svpn:${Buffer.from(derive(userPublicKey, 'locator', 16)).toString('hex')}`);
}

const RECORD_VERSION = 1;

export function sealRecord(userPublicKey: Uint8Array, cert: Uint8Array): Uint8Array {
  const nonce = randomBytes(12);
  const c = createCipheriv('chacha20-poly1305', derive(userPublicKey, 'record', 32), nonce, { authTagLength: 16 });
  c.setAAD(recordKey(userPublicKey), { plaintextLength: cert.length });
  const body = Buffer.concat([c.update(cert), c.final()]);
  return Buffer.concat([Buffer.from([RECORD_VERSION]), nonce, body, c.getAuthTag()]);
}

/** The certificate inside a record; throws SocialWireError if it is not one for this user. */
export function openRecord(userPublicKey: Uint8Array, record: Uint8Array): Uint8Array {
  if (record.length < 1 + 12 + 16) throw new SocialWireError('record too short');
  if (record[0] !== RECORD_VERSION) throw new SocialWireError(`unsupported record version ${record[0]}`);
  try {
    const d = createDecipheriv('chacha20-poly1305', derive(userPublicKey, 'record', 32), record.subarray(1, 13), { authTagLength: 16 });
    d.setAAD(recordKey(userPublicKey), { plaintextLength: record.length - 29 });
    d.setAuthTag(record.subarray(record.length - 16));
    return new Uint8Array(Buffer.concat([d.update(record.subarray(13, record.length - 16)), d.final()]));
  } catch {
    throw new SocialWireError('record does not open with this user key');
  }
}
