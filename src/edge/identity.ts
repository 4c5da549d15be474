// A node identity: an Ed25519 signing key (who we are; the node address is derived from
// its public key, so an address cannot be claimed without the key) and a static X25519
// key (the Noise static key, which the Ed25519 key vouches for in every handshake).
//
// Identity file (JSON, mode 0600, created on first use):
//   { "format": "brunet-ts-identity", "version": 1, "address": "brunet:node:…",
//     "ed25519": { "private": b64(seed 32), "public": b64(32) },
//     "x25519":  { "private": b64(32),      "public": b64(32) } }
// Public keys and address are stored for people reading the file and are checked on load.
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Address } from '../address/address.js';
import { readSecretFile, SecretFileError, writeSecretFile } from '../util/secret-file.js';
import {
  ed25519FromSeed, ed25519Sign, ed25519Verify, generateX25519, rawPrivate, rawPublic, x25519FromPrivate,
  type DhKeyPair,
} from './primitives.js';

const FORMAT = 'brunet-ts-identity';

export class IdentityError extends Error {
  override name = 'IdentityError';
}

/** The node address bound to an Ed25519 public key: SHA-1 of the raw key, as a ring point. */
export function addressOf(ed25519PublicKey: Uint8Array): Address {
  if (ed25519PublicKey.length !== 32) throw new IdentityError(`Ed25519 public key must be 32 bytes, got ${ed25519PublicKey.length}`);
  const digest = createHash('sha1').update(ed25519PublicKey).digest('hex');
  return Address.ringPoint(BigInt('0x' + digest));
}

/** Verifies an Ed25519 signature made by Identity.sign. */
export function verifySignature(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  return ed25519Verify(publicKey, data, signature);
}

export class Identity {
  readonly publicKey: Uint8Array;
  readonly address: Address;

  private constructor(private readonly signingKey: KeyObject, readonly x25519: DhKeyPair) {
    this.publicKey = rawPublic(createPublicKey(signingKey));
    this.address = addressOf(this.publicKey);
  }

  static generate(): Identity {
    return new Identity(generateKeyPairSync('ed25519').privateKey, generateX25519());
  }

  /** From raw 32-byte private keys (Ed25519 seed, X25519 scalar). */
  static fromPrivateKeys(ed25519Seed: Uint8Array, x25519Private: Uint8Array): Identity {
    try {
      return new Identity(ed25519FromSeed(ed25519Seed), x25519FromPrivate(x25519Private));
    } catch (e) {
      throw new IdentityError(`invalid private key: ${(e as Error).message}`);
    }
  }

  sign(data: Uint8Array): Uint8Array {
    return ed25519Sign(this.signingKey, data);
  }

  /** The file form; contains private keys. */
  serialize(): string {
    const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
    return JSON.stringify({
      format: FORMAT,
      version: 1,
      address: this.address.toString(),
      ed25519: { private: b64(rawPrivate(this.signingKey)), public: b64(this.publicKey) },
      x25519: { private: b64(rawPrivate(this.x25519.privateKey)), public: b64(this.x25519.publicKey) },
    }, null, 2) + '\n';
  }

  static parse(text: string, where = 'identity'): Identity {
    let j: unknown;
    try { j = JSON.parse(text); } catch { throw new IdentityError(`${where}: not valid JSON (corrupt identity file?)`); }
    const o = j as { format?: unknown; version?: unknown; address?: unknown; ed25519?: Record<string, unknown>; x25519?: Record<string, unknown> };
    if (typeof o !== 'object' || o === null || o.format !== FORMAT) throw new IdentityError(`${where}: not a ${FORMAT} file`);
    if (o.version !== 1) throw new IdentityError(`${where}: unsupported identity version ${String(o.version)}`);
    const key = (sec: Record<string, unknown> | undefined, field: string, what: string): Uint8Array => {
      const v = sec?.[field];
      if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new IdentityError(`${where}: ${what} missing or not base64`);
      const b = Buffer.from(v, 'base64');
      if (b.length !== 32) throw new IdentityError(`${where}: ${what} must be 32 bytes, got ${b.length}`);
      return new Uint8Array(b);
    };
    const id = Identity.fromPrivateKeys(key(o.ed25519, 'private', 'ed25519.private'), key(o.x25519, 'private', 'x25519.private'));
    const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
    if (o.ed25519?.public !== undefined && !same(key(o.ed25519, 'public', 'ed25519.public'), id.publicKey)) {
      throw new IdentityError(`${where}: ed25519.public does not match the private key (corrupt file)`);
    }
    if (o.x25519?.public !== undefined && !same(key(o.x25519, 'public', 'x25519.public'), id.x25519.publicKey)) {
      throw new IdentityError(`${where}: x25519.public does not match the private key (corrupt file)`);
    }
    if (o.address !== undefined && o.address !== id.address.toString()) {
      throw new IdentityError(`${where}: address ${String(o.address)} does not match the key (corrupt file)`);
    }
    return id;
  }
}

/**
 * Loads the identity at `file`, creating it (mode 0600, parent directory 0700) on first
 * use. Refuses files readable or writable by group/others, like ssh does.
 */
export function loadOrCreateIdentity(file: string): Identity {
  if (!fs.existsSync(file)) {
    const id = Identity.generate();
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      writeSecretFile(file, id.serialize(), { exclusive: true });
      return id;
    } catch (e) {
      // EEXIST: another process created it first; use theirs.
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new IdentityError(`cannot create identity file ${file}: ${(e as Error).message}`);
    }
  }
  let text: string;
  try { text = readSecretFile(file, 'identity file', 'private keys'); } catch (e) {
    if (e instanceof SecretFileError) throw new IdentityError(e.message);
    throw new IdentityError(`cannot read identity file ${file}: ${(e as Error).message}`);
  }
  return Identity.parse(text, `identity file ${file}`);
}
