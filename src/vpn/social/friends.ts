// The friend list: the users whose devices this device exchanges VPN traffic with (if they
// list this user too). A JSON file, friends.json in the state directory, written atomically
// (temp file + rename) so that the running VPN never reads half a file:
//   { "format": "brunet-ts-svpn-friends", "version": 1,
//     "friends": [ { "alias": "bob", "user": "bob", "key": hex(32-byte public key),
//                    "added": ISO 8601 time } ] }
// alias: this user's local name for the friend (unique; a DNS label, used in names);
// user: the name in the friend's code.
import fs from 'node:fs';
import path from 'node:path';
import { bytesEqual } from '../../edge/primitives.js';
import { writeFileAtomic } from '../../util/secret-file.js';
import { parseFriendCode, userId, type FriendCode } from './friend-code.js';
import { SocialError, SocialInputError } from './social-error.js';
import { userNameProblem } from './user-key.js';

const FORMAT = 'brunet-ts-svpn-friends';
export const FRIENDS_FILE = 'friends.json';

export interface Friend {
  readonly alias: string;
  readonly user: string;
  readonly publicKey: Uint8Array;
  /** ISO 8601. */
  readonly added: string;
}

export type AddResult = { friend: Friend; change: 'added' | 'renamed' | 'unchanged'; previousAlias?: string };

/** The friend list file in a state directory. */
export const friendsFileIn = (stateDir: string): string => path.join(stateDir, FRIENDS_FILE);

function parseFriends(text: string, where: string): Friend[] {
  let j: unknown;
  try { j = JSON.parse(text); } catch { throw new SocialError(`${where}: not valid JSON (corrupt friend list?)`); }
  const o = j as { format?: unknown; version?: unknown; friends?: unknown };
  if (typeof o !== 'object' || o === null || o.format !== FORMAT) throw new SocialError(`${where}: not a ${FORMAT} file`);
  if (o.version !== 1) throw new SocialError(`${where}: unsupported friend list version ${String(o.version)}`);
  if (!Array.isArray(o.friends)) throw new SocialError(`${where}: "friends" is not a list`);
  const out: Friend[] = [];
  o.friends.forEach((f: unknown, i) => {
    const e = f as Record<string, unknown> | null;
    const at = `${where}: friend ${i + 1}`;
    if (typeof e !== 'object' || e === null) throw new SocialError(`${at} is not an object`);
    const { alias, user, key, added } = e;
    if (typeof alias !== 'string' || userNameProblem(alias)) throw new SocialError(`${at}: invalid alias ${JSON.stringify(alias)}`);
    if (typeof user !== 'string' || userNameProblem(user)) throw new SocialError(`${at}: invalid user ${JSON.stringify(user)}`);
    if (typeof key !== 'string' || !/^[0-9a-f]{64}$/.test(key)) throw new SocialError(`${at}: key must be 64 lowercase hex digits`);
    if (typeof added !== 'string') throw new SocialError(`${at}: "added" must be a time string`);
    const publicKey = new Uint8Array(Buffer.from(key, 'hex'));
    if (out.some((x) => x.alias === alias)) throw new SocialError(`${at}: alias ${alias} appears twice`);
    if (out.some((x) => bytesEqual(x.publicKey, publicKey))) throw new SocialError(`${at}: key appears twice`);
    out.push({ alias, user, publicKey, added });
  });
  return out;
}

export class FriendList {
  private constructor(readonly file: string, private friends: Friend[], private readonly ownKey?: Uint8Array) {}

  /**
   * Reads `file` (missing = no friends; corrupt = SocialError). `ownPublicKey`, when given,
   * lets add() refuse this user's own code.
   */
  static load(file: string, ownPublicKey?: Uint8Array): FriendList {
    let text: string;
    try { text = fs.readFileSync(file, 'utf8'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new FriendList(file, [], ownPublicKey);
      throw new SocialError(`cannot read friend list ${file}: ${(e as Error).message}`);
    }
    return new FriendList(file, parseFriends(text, `friend list ${file}`), ownPublicKey);
  }

  list(): readonly Friend[] { return this.friends; }

  find(publicKey: Uint8Array): Friend | undefined {
    return this.friends.find((f) => bytesEqual(f.publicKey, publicKey));
  }

  isFriend(publicKey: Uint8Array): boolean { return this.find(publicKey) !== undefined; }

  /**
   * Adds the friend with `code` under `alias` (undefined: the name in the code) and saves;
   * `nowMs` is the time recorded as "added". A friend already listed (same key) is renamed
   * if an alias is given, else left as is.
   */
  add(code: string | FriendCode, alias: string | undefined, nowMs: number): AddResult {
    const c = typeof code === 'string' ? parseFriendCode(code) : code;
    if (this.ownKey && bytesEqual(c.publicKey, this.ownKey)) throw new SocialInputError('that is your own friend code');
    const a = alias === undefined ? undefined : alias.trim().toLowerCase();
    if (a !== undefined) {
      const bad = userNameProblem(a);
      if (bad) throw new SocialInputError(bad.replace(/^user name/, 'alias'));
    }
    const existing = this.find(c.publicKey);
    const want = a ?? existing?.alias ?? c.name;
    const clash = this.friends.find((f) => f.alias === want && f !== existing);
    if (clash) throw new SocialInputError(`alias ${want} is already used for another friend (user ${clash.user}, key id ${userId(clash.publicKey)}); choose another with --name`);
    if (existing) {
      if (existing.alias === want && existing.user === c.name) return { friend: existing, change: 'unchanged' };
      const friend: Friend = { ...existing, alias: want, user: c.name };
      this.friends = this.friends.map((f) => (f === existing ? friend : f));
      this.save();
      return existing.alias === want ? { friend, change: 'unchanged' } : { friend, change: 'renamed', previousAlias: existing.alias };
    }
    const friend: Friend = { alias: want, user: c.name, publicKey: c.publicKey, added: new Date(nowMs).toISOString() };
    this.friends = [...this.friends, friend];
    this.save();
    return { friend, change: 'added' };
  }

  /** Removes the friend with this alias or friend code and saves; SocialInputError if none. */
  remove(aliasOrCode: string): Friend {
    const s = aliasOrCode.trim();
    const gone = s.toLowerCase().startsWith('svpn1:')
      ? this.find(parseFriendCode(s).publicKey)
      : this.friends.find((f) => f.alias === s.toLowerCase());
    if (!gone) throw new SocialInputError(`no friend ${JSON.stringify(s)} in ${this.file} (see: socialvpn friends)`);
    this.friends = this.friends.filter((f) => f !== gone);
    this.save();
    return gone;
  }

  private save(): void {
    const json = JSON.stringify({
      format: FORMAT, version: 1,
      friends: this.friends.map((f) => ({ alias: f.alias, user: f.user, key: Buffer.from(f.publicKey).toString('hex'), added: f.added })),
    }, null, 2) + '\n';
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
      writeFileAtomic(this.file, json, 0o600);
    } catch (e) {
      throw new SocialError(`cannot write friend list ${this.file}: ${(e as Error).message}`);
    }
  }
}
