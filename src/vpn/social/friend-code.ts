// The friend code: one line a user pastes into a chat so that a friend can add them.
//   svpn1:<user name>:<base32(public key 32 B || checksum 2 B)>
// The checksum is the first two bytes of SHA-256("svpn1:" || name || ":" || public key), so
// a mistyped or cut name or key is caught. Base32 is RFC 4648 without padding, written in
// lower case (55 characters) and read in any case; the whole code is at most 94 characters
// (70 for an 8-letter name).
import { base32Decode, base32Encode } from '../../address/address.js';
import { bytesEqual, sha256 } from '../../edge/primitives.js';
import { SocialInputError } from './social-error.js';
import { userNameProblem } from './user-key.js';

export const FRIEND_CODE_PREFIX = 'svpn1';
const KEY_LEN = 32;
const SUM_LEN = 2;
const BODY_CHARS = Math.ceil(((KEY_LEN + SUM_LEN) * 8) / 5); // 55

function checksum(name: string, publicKey: Uint8Array): Uint8Array {
  return sha256(new TextEncoder().encode(`${FRIEND_CODE_PREFIX}:${name}:`), publicKey).subarray(0, SUM_LEN);
}

export function encodeFriendCode(name: string, publicKey: Uint8Array): string {
  const bad = userNameProblem(name);
  if (bad) throw new SocialInputError(bad);
  if (publicKey.length !== KEY_LEN) throw new SocialInputError(`a user public key is ${KEY_LEN} bytes, got ${publicKey.length}`);
  const body = new Uint8Array(KEY_LEN + SUM_LEN);
  body.set(publicKey);
  body.set(checksum(name, publicKey), KEY_LEN);
  return `${FRIEND_CODE_PREFIX}:${name}:${base32Encode(body).toLowerCase()}`;
}

export interface FriendCode { name: string; publicKey: Uint8Array }

/** Reads a friend code (surrounding white space ignored); SocialInputError naming what is wrong. */
export function parseFriendCode(text: string): FriendCode {
  const s = text.trim();
  const parts = s.split(':');
  if (parts.length !== 3 || parts[0]!.toLowerCase() !== FRIEND_CODE_PREFIX) {
    throw new SocialInputError(`not a friend code (expected ${FRIEND_CODE_PREFIX}:<name>:<key>, as printed by socialvpn id): ${JSON.stringify(s.slice(0, 100))}`);
  }
  const name = parts[1]!.toLowerCase();
  const bad = userNameProblem(name);
  if (bad) throw new SocialInputError(`friend code: ${bad}`);
  const b32 = parts[2]!.toUpperCase();
  if (!/^[A-Z2-7]*$/.test(b32)) throw new SocialInputError('friend code: the key part is not base32 (letters a-z and digits 2-7 only)');
  if (b32.length !== BODY_CHARS) throw new SocialInputError(`friend code: the key part has ${b32.length} characters, expected ${BODY_CHARS} (cut or extended?)`);
  const body = base32Decode(b32);
  // The last character carries 3 padding bits, which must be zero: one code per key.
  if (body.length !== KEY_LEN + SUM_LEN || base32Encode(body) !== b32) throw new SocialInputError('friend code: the key part is not canonical base32');
  const publicKey = body.slice(0, KEY_LEN);
  if (!bytesEqual(body.subarray(KEY_LEN), checksum(name, publicKey))) {
    throw new SocialInputError('friend code: checksum mismatch (a typo in the name or key?)');
  }
  return { name, publicKey };
}

/** A short stable id of a user key for logs and tables: the first 6 bytes of its SHA-256, hex. */
export function userId(publicKey: Uint8Array): string {
  return sha256(publicKey).subarray(0, 6).toString('hex');
}
