// Signed claims: values under keys that speak for an identity carry the signer's Ed25519 key
// and signature, so replicas and readers can check them. Two kinds of signed key:
//   exclusive (`dhcp:` — `dhcp:<ns>:<ip>` → node address, `dhcp:<ns>` → settings): one signer
//     at a time; a replica refuses another signer's value while a live one is held;
//   shared (`ipop:` — `ipop:<ns>:members`; `svpn:` — SocialVPN's device records): many
//     signers, one value each; readers only see genuine values and decide from the signer
//     (see vpn/mapping.ts and vpn/social/discovery.ts).
//
//   "BRCL" | version (1) | public key (32) | signature (64) | key length u16 | key | payload
//
// The signature covers "brunet-ts/claim/v1", a zero byte, the key and the payload. The key is
// carried so a replica (which only sees a ring point) can check the claim belongs there.
import { addressOf, verifySignature } from '../edge/identity.js';
import type { Address } from '../address/address.js';
import { WireError } from '../wire/value.js';
import { pointIndex } from './placement.js';

const MAGIC = [0x42, 0x52, 0x43, 0x4c]; // "BRCL"
const VERSION = 1;
const HEADER = 4 + 1 + 32 + 64 + 2;
const LABEL = new TextEncoder().encode('brunet-ts/claim/v1\0');
export const CLAIM_PREFIXES = ['dhcp:', 'ipop:', 'svpn:'];
/** Signed keys that hold one signer's values at a time. */
export const EXCLUSIVE_PREFIXES = ['dhcp:'];

export interface Signer { readonly publicKey: Uint8Array; sign(data: Uint8Array): Uint8Array }
export interface Claim { key: Uint8Array; payload: Uint8Array; publicKey: Uint8Array; claimer: Address }

const hasPrefix = (key: Uint8Array, prefixes: string[]) => {
  const text = Buffer.from(key).toString('latin1');
  return prefixes.some((p) => text.startsWith(p));
};

/** Values under this key are signed on write, and only genuine ones are returned on read. */
export function isClaimKey(key: Uint8Array): boolean { return hasPrefix(key, CLAIM_PREFIXES); }

/** Only one signer's values at a time (first come, while live). */
export function isExclusiveKey(key: Uint8Array): boolean { return hasPrefix(key, EXCLUSIVE_PREFIXES); }

export function isClaimValue(v: Uint8Array): boolean {
  return v.length >= 4 && MAGIC.every((m, i) => v[i] === m);
}

function signed(key: Uint8Array, payload: Uint8Array): Uint8Array {
  return Buffer.concat([LABEL, key, payload]);
}

export function makeClaim(signer: Signer, key: Uint8Array, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER + key.length + payload.length);
  out.set(MAGIC, 0);
  out[4] = VERSION;
  out.set(signer.publicKey, 5);
  out.set(signer.sign(signed(key, payload)), 37);
  new DataView(out.buffer).setUint16(101, key.length);
  out.set(key, HEADER);
  out.set(payload, HEADER + key.length);
  return out;
}

/** Decodes and verifies a claim; throws WireError if it is malformed or the signature is wrong. */
export function openClaim(v: Uint8Array): Claim {
  if (!isClaimValue(v) || v.length < HEADER) throw new WireError('not a claim');
  if (v[4] !== VERSION) throw new WireError(`unsupported claim version ${v[4]}`);
  const keyLen = new DataView(v.buffer, v.byteOffset, v.byteLength).getUint16(101);
  if (HEADER + keyLen > v.length) throw new WireError('truncated claim');
  const publicKey = v.slice(5, 37);
  const key = v.slice(HEADER, HEADER + keyLen);
  const payload = v.slice(HEADER + keyLen);
  if (!verifySignature(publicKey, signed(key, payload), v.subarray(37, 101))) throw new WireError('claim signature invalid');
  return { key, payload, publicKey, claimer: addressOf(publicKey) };
}

/** A replica's check: the claim is genuine and belongs at this ring point. */
export function claimFitsPoint(c: Claim, point: Uint8Array, degree: number): boolean {
  return pointIndex(c.key, point, degree) >= 0;
}
