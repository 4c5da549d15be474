// The group CA: its Ed25519 key, the ca.key file, and issuing (signing) certificates and
// revocation lists (formats in certificate.ts and crl.ts).
//
// CA key file (JSON, mode 0600), next to the public ca.pub (a CA certificate):
//   { "format": "brunet-ts-ca-key", "version": 1, "name": …, "keyId": hex,
//     "ed25519": { "private": b64(seed 32), "public": b64(32) } }
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { cryptoRandom, type RandomSource } from '../../util/random.js';
import { readSecretFile, SecretFileError } from '../../util/secret-file.js';
import { bytesEqual, ed25519FromSeed, ed25519Sign, rawPrivate, rawPublic } from '../primitives.js';
import { KIND_CA, KIND_MEMBER, caKeyId, checkName, encodeCertificate } from './certificate.js';
import { encodeRevocations, type RevocationInput } from './crl.js';
import { CertificateError } from './errors.js';

export const DEFAULT_CA_VALID_DAYS = 3650;
/** signMember backdates notBefore by this much, so a member whose clock lags a little can still link. */
export const NOT_BEFORE_BACKDATE_MS = 5 * 60_000;
const DAY_MS = 86_400_000;
const CA_KEY_FORMAT = 'brunet-ts-ca-key';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

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

/** Loads a ca.key file; refuses one readable or writable by group/others. */
export function loadCaKey(file: string): CertificateAuthority {
  let text: string;
  try { text = readSecretFile(file, 'CA key', 'the CA private key'); } catch (e) {
    if (e instanceof SecretFileError) throw new CertificateError('malformed', e.message);
    throw new CertificateError('malformed', `cannot read CA key ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return CertificateAuthority.parse(text, `CA key ${file}`);
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
  checkName(name);
  const now = Math.floor(o.now ?? Date.now());
  const notBefore = Math.max(0, Math.floor(o.notBefore ?? now - NOT_BEFORE_BACKDATE_MS));
  const notAfter = Math.floor(now + validDays * DAY_MS);
  if (notAfter <= notBefore) throw new CertificateError('malformed', 'notAfter must be after notBefore');
  if (notAfter > Number.MAX_SAFE_INTEGER) throw new CertificateError('malformed', 'validity too long');
  const serial = (o.random ?? cryptoRandom).bytes(8);
  return encodeCertificate({ kind, caKeyId: ca.keyId, publicKey: subject, name, notBefore, notAfter, serial }, (body) => ca.sign(body));
}

/** Signs a revocation list issued at `issuedAt` (ms epoch). */
export function signRevocations(ca: CertificateAuthority, revoked: RevocationInput, issuedAt: number): Uint8Array {
  return encodeRevocations(ca.keyId, revoked, issuedAt, (body) => ca.sign(body));
}
