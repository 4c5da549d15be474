// Cryptographic building blocks for the secure-edge layer: from node:crypto SHA-256,
// HMAC-SHA256 and the Noise HKDF; ChaCha20-Poly1305 with Noise's nonce encoding (from
// libsodium or node:crypto, see aead.ts); and raw-key helpers for X25519 and Ed25519
// (node wants DER/KeyObjects, the wire wants 32 raw bytes). Nothing here keeps state.
import {
  createHash, createHmac, createPrivateKey, createPublicKey,
  diffieHellman, generateKeyPairSync, sign as edSign, verify as edVerify, type KeyObject,
} from 'node:crypto';
import { AEAD_TAG_LEN, defaultAead, nonceBytes } from './aead.js';

export const KEY_LEN = 32;
export const HASH_LEN = 32;
export const TAG_LEN = AEAD_TAG_LEN;

export class CryptoFailure extends Error {
  override name = 'CryptoFailure';
}

export function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

export function hmacSha256(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** Noise HKDF (spec §4.3): HMAC-SHA256 with the chaining key as salt, 2 or 3 outputs. */
export function hkdf(ck: Uint8Array, ikm: Uint8Array, n: 2 | 3): Buffer[] {
  const temp = hmacSha256(ck, ikm);
  const o1 = hmacSha256(temp, Uint8Array.of(1));
  const o2 = hmacSha256(temp, o1, Uint8Array.of(2));
  if (n === 2) return [o1, o2];
  return [o1, o2, hmacSha256(temp, o2, Uint8Array.of(3))];
}

/** Noise ChaChaPoly nonce: 4 zero bytes then the 64-bit counter little-endian (spec §12.4). */
export function nonce(n: number): Buffer {
  checkNonce(n);
  return nonceBytes(n);
}

function checkNonce(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new CryptoFailure(`nonce ${n} out of range`);
}

// The AEAD functions below run on the backend chosen at load (aead.ts) unless given another
// as their last argument.

/** ChaCha20-Poly1305 encryption; returns ciphertext || 16-byte tag in a new buffer. */
export function aeadEncrypt(k: Uint8Array, n: number, ad: Uint8Array, pt: Uint8Array, aead = defaultAead): Buffer {
  checkNonce(n);
  const out = Buffer.allocUnsafe(pt.length + TAG_LEN); // every byte is written below
  aead.sealInto(k, n, ad, pt, out, 0);
  return out;
}

/**
 * ChaCha20-Poly1305 encryption into `out` at `offset` (ciphertext, then the 16-byte tag):
 * the per-packet path, with no result buffer of its own. pt may be out's own bytes at
 * offset (sealing in place, into a buffer with room for the header in front and the tag
 * behind); nothing keeps a reference to pt or out after the call.
 */
export function aeadEncryptInto(k: Uint8Array, n: number, ad: Uint8Array, pt: Uint8Array, out: Uint8Array, offset: number, aead = defaultAead): void {
  checkNonce(n);
  if (offset < 0 || offset + pt.length + TAG_LEN > out.length) throw new RangeError('no room for the ciphertext and its tag');
  aead.sealInto(k, n, ad, pt, out, offset);
}

/**
 * Decrypts ciphertext || tag into a new buffer; throws CryptoFailure if it does not
 * authenticate. ct is left as it was.
 */
export function aeadDecrypt(k: Uint8Array, n: number, ad: Uint8Array, ct: Uint8Array, aead = defaultAead): Buffer {
  checkNonce(n);
  if (ct.length < TAG_LEN) throw new CryptoFailure('ciphertext shorter than its tag');
  const out = Buffer.allocUnsafe(ct.length - TAG_LEN);
  if (!aead.openInto(k, n, ad, ct, out)) throw new CryptoFailure('authentication tag mismatch');
  return out;
}

// Fixed DER wrappers around 32-byte raw keys (RFC 8410).
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const ED25519_SPKI = Buffer.from('302a300506032b6570032100', 'hex');
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface DhKeyPair {
  /** 32 raw bytes, as sent on the wire. */
  readonly publicKey: Uint8Array;
  readonly privateKey: KeyObject;
}

function raw32(b: Uint8Array, what: string): Buffer {
  if (b.length !== 32) throw new CryptoFailure(`${what} must be 32 bytes, got ${b.length}`);
  return Buffer.from(b);
}

export function rawPublic(k: KeyObject): Uint8Array {
  return new Uint8Array(k.export({ format: 'der', type: 'spki' }).subarray(12));
}
export function rawPrivate(k: KeyObject): Uint8Array {
  return new Uint8Array(k.export({ format: 'der', type: 'pkcs8' }).subarray(16));
}

export function generateX25519(): DhKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { privateKey, publicKey: rawPublic(publicKey) };
}

export function x25519FromPrivate(priv: Uint8Array): DhKeyPair {
  const privateKey = createPrivateKey({ key: Buffer.concat([X25519_PKCS8, raw32(priv, 'X25519 private key')]), format: 'der', type: 'pkcs8' });
  return { privateKey, publicKey: rawPublic(createPublicKey(privateKey)) };
}

/** X25519; throws CryptoFailure on a malformed or low-order peer key (all-zero output). */
export function dh(kp: DhKeyPair, remotePublic: Uint8Array): Buffer {
  try {
    const publicKey = createPublicKey({ key: Buffer.concat([X25519_SPKI, raw32(remotePublic, 'X25519 public key')]), format: 'der', type: 'spki' });
    return diffieHellman({ privateKey: kp.privateKey, publicKey });
  } catch (e) {
    throw new CryptoFailure(`X25519 failed: ${(e as Error).message}`);
  }
}

export function ed25519FromSeed(seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, raw32(seed, 'Ed25519 private key')]), format: 'der', type: 'pkcs8' });
}

export function ed25519Sign(key: KeyObject, data: Uint8Array): Uint8Array {
  return new Uint8Array(edSign(null, data, key));
}

/** False for a bad signature or a public key that is not a valid Ed25519 point. */
export function ed25519Verify(publicKey: Uint8Array, data: Uint8Array, sig: Uint8Array): boolean {
  if (publicKey.length !== 32 || sig.length !== 64) return false;
  try {
    const k = createPublicKey({ key: Buffer.concat([ED25519_SPKI, publicKey]), format: 'der', type: 'spki' });
    return edVerify(null, data, k, sig);
  } catch {
    return false;
  }
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/** Best-effort erasure of key material we own (JS gives no guarantee about copies). */
export function wipe(b: Uint8Array | undefined): void {
  b?.fill(0);
}
