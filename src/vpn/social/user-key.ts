// The SocialVPN user key: an Ed25519 key that is the user. Every device holding a copy of
// the file is one of that user's devices; it certifies each device's node key
// (device-cert.ts), and its public key is what friends list (friend-code.ts).
//
// User key file (JSON, mode 0600):
//   { "format": "brunet-ts-svpn-user", "version": 1, "name": "alice",
//     "seed": b64(Ed25519 private seed, 32 bytes), "public": b64(32 bytes) }
// "public" is for people reading the file and is checked against the seed on load.
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ed25519FromSeed, ed25519Sign, rawPrivate, rawPublic } from '../../edge/primitives.js';
import { readSecretFile, SecretFileError, writeSecretFile } from '../../util/secret-file.js';
import { SocialError, SocialInputError } from './social-error.js';

const FORMAT = 'brunet-ts-svpn-user';
export const USER_NAME_MAX = 32;

/** Why `name` cannot be a user name (1-32 of a-z 0-9 -, not starting or ending with -), or undefined. */
export function userNameProblem(name: string): string | undefined {
  if (!/^[a-z0-9-]{1,32}$/.test(name)) return `user name ${JSON.stringify(name)} must be 1-${USER_NAME_MAX} characters a-z, 0-9 or -`;
  if (name.startsWith('-') || name.endsWith('-')) return `user name ${JSON.stringify(name)} must not start or end with -`;
  return undefined;
}

/** A user name as typed (any case) in its lowercase form; SocialInputError if it is not valid. */
export function normalizeUserName(name: string): string {
  const n = name.trim().toLowerCase();
  const bad = userNameProblem(n);
  if (bad) throw new SocialInputError(bad);
  return n;
}

export class UserKey {
  readonly publicKey: Uint8Array;

  private constructor(readonly name: string, private readonly key: KeyObject) {
    this.publicKey = rawPublic(createPublicKey(key));
  }

  static generate(name: string): UserKey {
    return new UserKey(normalizeUserName(name), generateKeyPairSync('ed25519').privateKey);
  }

  static fromSeed(name: string, seed: Uint8Array): UserKey {
    const n = normalizeUserName(name);
    try {
      return new UserKey(n, ed25519FromSeed(seed));
    } catch (e) {
      throw new SocialError(`invalid user key seed: ${(e as Error).message}`);
    }
  }

  sign(data: Uint8Array): Uint8Array {
    return ed25519Sign(this.key, data);
  }

  /** The file form; contains the private seed. */
  serialize(): string {
    const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
    return JSON.stringify({ format: FORMAT, version: 1, name: this.name, seed: b64(rawPrivate(this.key)), public: b64(this.publicKey) }, null, 2) + '\n';
  }

  static parse(text: string, where = 'user key'): UserKey {
    let j: unknown;
    try { j = JSON.parse(text); } catch { throw new SocialError(`${where}: not valid JSON (corrupt or truncated user key file?)`); }
    const o = j as { format?: unknown; version?: unknown; name?: unknown; seed?: unknown; public?: unknown };
    if (typeof o !== 'object' || o === null || o.format !== FORMAT) throw new SocialError(`${where}: not a ${FORMAT} file`);
    if (o.version !== 1) throw new SocialError(`${where}: unsupported user key version ${String(o.version)}`);
    if (typeof o.name !== 'string' || userNameProblem(o.name)) throw new SocialError(`${where}: missing or invalid user name`);
    const b64 = (v: unknown, what: string): Uint8Array => {
      if (typeof v !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) throw new SocialError(`${where}: ${what} missing or not base64`);
      const b = Buffer.from(v, 'base64');
      if (b.length !== 32) throw new SocialError(`${where}: ${what} must be 32 bytes, got ${b.length}`);
      return new Uint8Array(b);
    };
    const key = UserKey.fromSeed(o.name, b64(o.seed, 'seed'));
    if (o.public !== undefined && !Buffer.from(b64(o.public, 'public')).equals(key.publicKey)) {
      throw new SocialError(`${where}: public key does not match the seed (corrupt file)`);
    }
    return key;
  }

  /** Loads an existing user key file; SocialError if it is missing, too open or corrupt. */
  static load(file: string): UserKey {
    let text: string;
    try { text = readSecretFile(file, 'user key file', 'the private user key'); } catch (e) {
      if (e instanceof SecretFileError) throw new SocialError(e.message);
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new SocialError(`no user key at ${file} (run: socialvpn init -c CONFIG --user NAME)`);
      throw new SocialError(`cannot read user key file ${file}: ${(e as Error).message}`);
    }
    return UserKey.parse(text, `user key file ${file}`);
  }

  /**
   * Reuses the key at `file`, or creates it (mode 0600, parent directory 0700) for user
   * `name`. A name that differs from the existing key's is an input error naming both.
   */
  static loadOrCreate(file: string, name?: string): { key: UserKey; created: boolean } {
    const wanted = name === undefined ? undefined : normalizeUserName(name);
    if (!fs.existsSync(file)) {
      if (wanted === undefined) throw new SocialInputError(`no user key at ${file}; a user name is needed to create one (--user NAME)`);
      const key = UserKey.generate(wanted);
      try {
        fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
        writeSecretFile(file, key.serialize(), { exclusive: true });
        return { key, created: true };
      } catch (e) {
        // EEXIST: another process created it first; use theirs (checked below).
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new SocialError(`cannot create user key file ${file}: ${(e as Error).message}`);
      }
    }
    const key = UserKey.load(file);
    if (wanted !== undefined && wanted !== key.name) {
      throw new SocialInputError(`${file} holds the key of user ${key.name}, not ${wanted} (use --user ${key.name}, or another UserKeyFile for a new user)`);
    }
    return { key, created: false };
  }
}
