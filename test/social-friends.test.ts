// The SocialVPN friend list (friends.json) and its watcher, on an injected clock.
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import type { Clock, TimerHandle } from '../src/util/clock.js';
import { encodeFriendCode, userId } from '../src/vpn/social/friend-code.js';
import { FriendWatcher } from '../src/vpn/social/friend-watcher.js';
import { friendsFileIn, FriendList } from '../src/vpn/social/friends.js';
import { SocialError, SocialInputError } from '../src/vpn/social/social-error.js';
import { UserKey } from '../src/vpn/social/user-key.js';
import { tempDir } from './helpers/procs.js';

/** A clock whose intervals fire only when advance() says so. */
class FakeClock implements Clock {
  t = 0;
  private timers: Array<{ at: number; every: number; fn: () => void; live: boolean }> = [];
  now(): number { return this.t; }
  setTimeout(fn: () => void, ms: number): TimerHandle { return this.add(fn, ms, 0); }
  setInterval(fn: () => void, ms: number): TimerHandle { return this.add(fn, ms, ms); }
  private add(fn: () => void, ms: number, every: number): TimerHandle {
    const e = { at: this.t + ms, every, fn, live: true };
    this.timers.push(e);
    return { cancel: () => { e.live = false; } };
  }
  get pending(): number { return this.timers.filter((e) => e.live).length; }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const next = this.timers.filter((e) => e.live && e.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.t = next.at;
      if (next.every > 0) next.at += next.every; else next.live = false;
      next.fn();
    }
    this.t = end;
  }
}

const me = UserKey.generate('alice');
const bob = UserKey.generate('bob');
const carol = UserKey.generate('carol');
const T0 = Date.UTC(2026, 0, 1);
const code = (k: UserKey) => encodeFriendCode(k.name, k.publicKey);

t.test('add, rename, remove; saved atomically and read back', async (t) => {
  const dir = tempDir(t);
  const file = friendsFileIn(join(dir, 'state'));
  const l = FriendList.load(file, me.publicKey);
  t.same(l.list(), [], 'a missing file is an empty list');
  const r = l.add(code(bob), undefined, Date.UTC(2026, 0, 2));
  t.same([r.change, r.friend.alias, r.friend.user, r.friend.added], ['added', 'bob', 'bob', '2026-01-02T00:00:00.000Z']);
  t.ok(l.isFriend(bob.publicKey));
  t.notOk(l.isFriend(carol.publicKey));
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.same(readdirSync(join(dir, 'state')), ['friends.json'], 'no temp file left');
  const j = JSON.parse(readFileSync(file, 'utf8')) as { format: string; version: number; friends: Array<Record<string, string>> };
  t.same(j, { format: 'brunet-ts-svpn-friends', version: 1, friends: [{ alias: 'bob', user: 'bob', key: Buffer.from(bob.publicKey).toString('hex'), added: '2026-01-02T00:00:00.000Z' }] });

  t.equal(l.add(code(bob), undefined, T0).change, 'unchanged', 'the same code again');
  const rn = l.add(code(bob), 'Bobby', T0);
  t.same([rn.change, rn.previousAlias, rn.friend.alias], ['renamed', 'bob', 'bobby'], 'a duplicate key updates the alias');
  t.equal(l.list().length, 1);
  t.equal(l.add(code(bob), undefined, T0).friend.alias, 'bobby', 'without --name an existing alias is kept');
  t.throws(() => l.add(code(carol), 'bobby', T0), { name: 'SocialInputError', message: new RegExp(`alias bobby is already used for another friend \\(user bob, key id ${userId(bob.publicKey)}\\)`) });
  t.throws(() => l.add(code(me), undefined, T0), { name: 'SocialInputError', message: /^that is your own friend code$/ });
  t.throws(() => l.add(code(carol), 'bad alias', T0), { name: 'SocialInputError', message: /^alias "bad alias"/ });
  t.throws(() => l.add('svpn1:carol:nope', undefined, T0), SocialInputError, 'a malformed code');
  l.add(code(carol), undefined, T0);

  const back = FriendList.load(file);
  t.same(back.list().map((f) => [f.alias, f.user, userId(f.publicKey)]), [['bobby', 'bob', userId(bob.publicKey)], ['carol', 'carol', userId(carol.publicKey)]]);
  t.equal(back.find(carol.publicKey)?.alias, 'carol');

  t.equal(back.remove('BOBBY').alias, 'bobby', 'by alias, any case');
  t.equal(back.remove(code(carol)).alias, 'carol', 'by code');
  t.throws(() => back.remove('carol'), { name: 'SocialInputError', message: /no friend "carol"/ });
  t.throws(() => back.remove('svpn1:x:y'), SocialInputError, 'a malformed code');
  t.same(FriendList.load(file).list(), []);
});

t.test('a corrupt friend list is a SocialError naming the problem', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'friends.json');
  const ok = { alias: 'bob', user: 'bob', key: 'ab'.repeat(32), added: '2026-01-01T00:00:00.000Z' };
  const doc = (friends: unknown, extra: object = {}) => JSON.stringify({ format: 'brunet-ts-svpn-friends', version: 1, friends, ...extra });
  const cases: Array<[string, string, RegExp]> = [
    ['truncated', doc([ok]).slice(0, 30), /not valid JSON/],
    ['other format', '{"format":"x","version":1}', /not a brunet-ts-svpn-friends file/],
    ['version 9', doc([], { version: 9 }), /unsupported friend list version 9/],
    ['friends not a list', doc({}), /"friends" is not a list/],
    ['a null entry', doc([null]), /friend 1 is not an object/],
    ['bad alias', doc([{ ...ok, alias: 'A B' }]), /friend 1: invalid alias/],
    ['bad user', doc([{ ...ok, user: 7 }]), /friend 1: invalid user/],
    ['short key', doc([{ ...ok, key: 'abcd' }]), /friend 1: key must be 64 lowercase hex digits/],
    ['no added', doc([{ ...ok, added: undefined }]), /friend 1: "added"/],
    ['alias twice', doc([ok, { ...ok, key: 'cd'.repeat(32) }]), /friend 2: alias bob appears twice/],
    ['key twice', doc([ok, { ...ok, alias: 'b2' }]), /friend 2: key appears twice/],
  ];
  for (const [what, text, re] of cases) {
    writeFileSync(file, text);
    t.throws(() => FriendList.load(file), { name: 'SocialError', message: re }, what);
  }
  t.throws(() => FriendList.load(dir), { name: 'SocialError', message: /cannot read friend list/ }, 'a directory');
});

t.test('FriendWatcher: a running VPN sees friend add/remove within one period', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'friends.json');
  const clock = new FakeClock();
  const seen: string[][] = [];
  const errors: string[] = [];
  const w = new FriendWatcher(file, clock, (l) => seen.push(l.list().map((f) => f.alias)), 1000, (e) => errors.push(e.message));
  t.same(w.list.list(), [], 'starts from a missing file');
  clock.advance(5000);
  t.same(seen, [], 'nothing changed: no callback');

  FriendList.load(file, me.publicKey).add(code(bob), undefined, T0); // what `socialvpn friend add` does
  t.same(seen, [], 'not before the next check');
  clock.advance(1000);
  t.same(seen, [['bob']], 'picked up within one period');
  t.ok(w.list.isFriend(bob.publicKey));

  FriendList.load(file).add(code(carol), undefined, T0);
  FriendList.load(file).remove('bob');
  clock.advance(1000);
  t.same(seen.at(-1), ['carol'], 'several changes between checks: the latest list');
  t.notOk(w.list.isFriend(bob.publicKey), 'a removed friend is no longer a friend');

  writeFileSync(file, '{"format": "brunet-ts-svpn-fr'); // a hand edit gone wrong
  clock.advance(1000);
  t.equal(seen.length, 2, 'a corrupt file is not reported as a change');
  t.match(errors, [/not valid JSON/]);
  t.ok(w.list.isFriend(carol.publicKey), 'the last good list stays in force');
  clock.advance(3000);
  t.equal(errors.length, 1, 'reported once, not every period');

  FriendList.load(join(dir, 'none.json')).add(code(bob), undefined, T0); // then a good file is renamed into place
  writeFileSync(file, readFileSync(join(dir, 'none.json')));
  clock.advance(1000);
  t.same(seen.at(-1), ['bob'], 'recovers once the file is good again');

  w.stop();
  t.equal(clock.pending, 0, 'stop() cancels the timer');
});

t.test('FriendWatcher: a corrupt file at start is an error; a throwing handler does not stop it', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'friends.json');
  writeFileSync(file, 'nonsense');
  t.throws(() => new FriendWatcher(file, new FakeClock(), () => {}), SocialError);
  writeFileSync(file, JSON.stringify({ format: 'brunet-ts-svpn-friends', version: 1, friends: [] }));
  const clock = new FakeClock();
  const errors: string[] = [];
  let calls = 0;
  const w = new FriendWatcher(file, clock, () => { calls++; throw new Error('boom'); }, 500, (e) => errors.push(e.message));
  t.teardown(() => w.stop());
  FriendList.load(file).add(code(bob), undefined, T0);
  clock.advance(500);
  t.equal(calls, 1);
  t.match(errors, [/change handler failed: boom/]);
  FriendList.load(file).add(code(carol), undefined, T0);
  clock.advance(500);
  t.equal(calls, 2, 'still watching');
});
