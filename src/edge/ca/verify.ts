// Verification against a group CA: member and CA certificates (certificate.ts),
// revocation lists (crl.ts), and the admission hook membershipVerifier(), the
// SecureEdgeListener `verifyPeer` that admits only holders of a valid, unrevoked
// certificate of our CA for the key they proved in the handshake.
import fs from 'node:fs';
import type { Address } from '../../address/address.js';
import type { Clock } from '../../util/clock.js';
import { WireError } from '../../wire/value.js';
import { addressOf } from '../identity.js';
import { bytesEqual, ed25519Verify } from '../primitives.js';
import type { PeerInfo, VerifyPeer } from '../secure-types.js';
import { KIND_CA, KIND_MEMBER, caKeyId, decodeCertificate, formatSerial, kindName, type Certificate } from './certificate.js';
import { decodeRevocations, isRevoked, NO_REVOCATIONS, type Revoked, type RevocationList } from './crl.js';
import { CertificateError, type CertificateFailure } from './errors.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

export interface VerifiedCertificate {
  address: Address;
  publicKey: Uint8Array;
  name: string;
  serial: bigint;
  notBefore: number;
  notAfter: number;
  kind: number;
}

export interface VerifyOptions {
  /** Default KIND_MEMBER. */
  kind?: number;
}

/** decode(data), with a WireError (truncated, trailing bytes) turned into CertificateError 'malformed'. */
function decodeOrRefuse<T>(decode: (data: Uint8Array) => T, data: Uint8Array, what: string): T {
  try { return decode(data); } catch (e) {
    if (e instanceof WireError) throw new CertificateError('malformed', `malformed ${what}: ${e.message}`);
    throw e;
  }
}

/**
 * Verifies `cert` was issued by the CA with `caPublicKey` and is valid at `now`; returns the
 * subject. Throws CertificateError (reason: malformed, unsupported-version, wrong-ca,
 * bad-signature, address-mismatch, wrong-kind, not-yet-valid, expired).
 */
export function verifyCertificate(cert: Uint8Array, caPublicKey: Uint8Array, now: number, o: VerifyOptions = {}): VerifiedCertificate {
  const c = decodeOrRefuse(decodeCertificate, cert, 'certificate');
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
  const c: Certificate = decodeOrRefuse(decodeCertificate, data, 'CA certificate');
  if (c.kind !== KIND_CA) throw new CertificateError('wrong-kind', `not a CA certificate (it is a ${kindName(c.kind)} certificate)`);
  if (!bytesEqual(c.caKeyId, caKeyId(c.publicKey))) throw new CertificateError('wrong-ca', 'CA certificate is not self-issued');
  if (!ed25519Verify(c.publicKey, c.signed, c.signature)) throw new CertificateError('bad-signature', 'CA certificate self-signature invalid');
  return { publicKey: c.publicKey, keyId: c.caKeyId, name: c.name, notAfter: c.notAfter };
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

/** Verifies a revocation list signed by the CA with `caPublicKey`; throws CertificateError. */
export function verifyRevocations(data: Uint8Array, caPublicKey: Uint8Array): RevocationList {
  const r = decodeOrRefuse(decodeRevocations, data, 'revocation list');
  if (!bytesEqual(r.caKeyId, caKeyId(caPublicKey))) throw new CertificateError('wrong-ca', `revocation list issued by another CA (key id ${hex(r.caKeyId)})`);
  if (!ed25519Verify(caPublicKey, r.signed, r.signature)) throw new CertificateError('bad-signature', 'revocation list signature invalid');
  return { caKeyId: r.caKeyId, issuedAt: r.issuedAt, serials: r.serials, keys: r.keys };
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
