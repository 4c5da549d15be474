// The socialvpn command line without a VPN: init, id, friend add/remove and friends against
// the built CLI in a temp directory, with their exit codes (0 ok, 2 bad input, 1 key or file
// problems) and one-line messages.
import { chmodSync, copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ROOT, run, tempDir } from './helpers/procs.js';

const SVPN = join(ROOT, 'dist/src/cli/socialvpn.js');
const config = (dir: string, key = 'user.key') => {
  mkdirSync(dir, { recursive: true });
  const f = join(dir, 'svpn.xml');
  writeFileSync(f, `<NodeConfig><BrunetNamespace>svpn</BrunetNamespace><SocialVpnConfig><UserKeyFile>${key}</UserKeyFile>
    <DeviceName>dev</DeviceName></SocialVpnConfig></NodeConfig>`);
  return f;
};
const CODE = /^svpn1:[a-z0-9-]+:[a-z2-7]{55}$/;

t.test('init, id, friends: two users befriend each other', async (t) => {
  const dir = tempDir(t);
  const a = config(join(dir, 'alice')), b = config(join(dir, 'bob'));
  t.ok(statSync(SVPN).mode & 0o100, 'the built CLI is executable');

  let r = await run(SVPN, ['init', '-c', a, '--user', 'Alice']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`^user alice: key created at ${join(dir, 'alice', 'user.key')}\\nfriend code: svpn1:alice:`));
  t.equal(statSync(join(dir, 'alice', 'user.key')).mode & 0o777, 0o600);
  r = await run(SVPN, ['init', '-c', a, '--user', 'alice']);
  t.equal(r.code, 0);
  t.match(r.stdout, /^user alice: key reused from /);
  r = await run(SVPN, ['init', '-c', a, '--user', 'bob']);
  t.equal(r.code, 2, 'a different user name for an existing key');
  t.match(r.stderr, /^socialvpn: .*user\.key holds the key of user alice, not bob/);

  const idA = await run(SVPN, ['id', '-c', a]);
  t.equal(idA.code, 0);
  t.match(idA.stdout, /^svpn1:alice:[a-z2-7]{55}\n$/, 'id prints the friend code line only');
  const codeA = idA.stdout.trim();
  await run(SVPN, ['init', '-c', b, '--user', 'bob']);
  const codeB = (await run(SVPN, ['id', '-c', b])).stdout.trim();
  t.match(codeB, CODE);

  r = await run(SVPN, ['friends', '-c', a]);
  t.equal(r.code, 0);
  t.match(r.stdout, /^no friends yet/);
  r = await run(SVPN, ['friend', 'add', '-c', a, codeB]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^friend bob added \(user bob, key id [0-9a-f]{12}\)\n$/);
  r = await run(SVPN, ['friend', 'add', '-c', b, codeA, '--name', 'ally']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^friend ally added \(user alice/);
  r = await run(SVPN, ['friend', 'add', '-c', a, codeB, '--name', 'bobby']);
  t.match(r.stdout, /^friend bob renamed to bobby/);
  r = await run(SVPN, ['friends', '-c', a]);
  t.equal(r.code, 0);
  const lines = r.stdout.trim().split('\n');
  t.match(lines[0], /^ALIAS\s+USER\s+KEY ID\s+ADDED$/);
  t.match(lines[1], /^bobby\s+bob\s+[0-9a-f]{12}\s+\d{4}-\d\d-\d\d$/);
  t.equal(lines.length, 2);
  r = await run(SVPN, ['friends', '-c', a, '--json']);
  const rows = JSON.parse(r.stdout) as Array<Record<string, string>>;
  t.same(rows.map((x) => [x.alias, x.user]), [['bobby', 'bob']]);
  t.match(rows[0], { key: /^[0-9a-f]{64}$/, keyId: /^[0-9a-f]{12}$/ });
  t.ok(JSON.parse(readFileSync(join(dir, 'alice', 'svpn.xml.data', 'friends.json'), 'utf8')), 'the list is in CONFIG.data');

  r = await run(SVPN, ['friends', '-c', a, '--state-dir', join(dir, 'elsewhere')]);
  t.match(r.stdout, /^no friends yet/, '--state-dir moves the list');
  r = await run(SVPN, ['friend', 'remove', '-c', a, 'bobby']);
  t.equal(r.code, 0);
  t.match(r.stdout, /^friend bobby removed/);
  r = await run(SVPN, ['friend', 'remove', '-c', a, 'bobby']);
  t.equal(r.code, 2, 'an unknown friend');
  t.match(r.stderr, /no friend "bobby"/);
  r = await run(SVPN, ['friend', 'remove', '-c', b, codeA]);
  t.equal(r.code, 0, 'remove by code');
});

t.test('copying the key file to a second config gives the same user and friend code', async (t) => {
  const dir = tempDir(t);
  const a = config(join(dir, 'laptop')), c = config(join(dir, 'phone'), 'keys/alice.key');
  await run(SVPN, ['init', '-c', a, '--user', 'alice']);
  mkdirSync(join(dir, 'phone', 'keys'));
  copyFileSync(join(dir, 'laptop', 'user.key'), join(dir, 'phone', 'keys', 'alice.key'));
  const r = await run(SVPN, ['init', '-c', c, '--user', 'alice']);
  t.match(r.stdout, /^user alice: key reused from .*phone\/keys\/alice\.key/);
  t.equal((await run(SVPN, ['id', '-c', c])).stdout, (await run(SVPN, ['id', '-c', a])).stdout);
});

t.test('bad input exits 2, key and file problems exit 1, one line each', async (t) => {
  const dir = tempDir(t);
  const a = config(join(dir, 'a'));
  const plain = join(dir, 'plain.xml');
  writeFileSync(plain, '<NodeConfig><BrunetNamespace>r</BrunetNamespace></NodeConfig>');

  let r = await run(SVPN, ['id', '-c', a]);
  t.equal(r.code, 1, 'no key yet');
  t.match(r.stderr, /^socialvpn: no user key at .*user\.key \(run: socialvpn init -c CONFIG --user NAME\)\n$/);
  r = await run(SVPN, ['friend', 'add', '-c', a, 'svpn1:x:y']);
  t.equal(r.code, 1, 'friend add needs the own key (to refuse the own code)');

  await run(SVPN, ['init', '-c', a, '--user', 'alice']);
  const own = (await run(SVPN, ['id', '-c', a])).stdout.trim();
  const usage: Array<[string[], RegExp]> = [
    [[], /no command/],
    [['frobnicate', '-c', a], /unknown command "frobnicate"/],
    [['init', '-c', a], /init needs --user NAME/],
    [['init', '-c', a, '--user', 'not valid'], /user name "not valid" must be/],
    [['id', '-c', a, 'extra'], /id takes no arguments/],
    [['id', '-c', a, '--bogus'], /Unknown option '--bogus'/],
    [['friend', '-c', a], /friend needs add or remove/],
    [['friend', 'add', '-c', a], /friend add takes one CODE/],
    [['friend', 'add', '-c', a, own], /^socialvpn: that is your own friend code\n$/],
    [['friend', 'add', '-c', a, 'svpn1:bob:abc'], /friend code: the key part has 3 characters, expected 55/],
    [['friend', 'add', '-c', a, 'hello'], /not a friend code/],
    [['friend', 'add', '-c', a, own.replace('svpn1:alice:', 'svpn1:alicia:')], /checksum mismatch/],
    [['friend', 'add', '-c', a, own.replace(/.$/, (ch) => (ch === 'a' ? 'q' : 'a'))], /checksum mismatch|not canonical/],
    [['friend', 'remove', '-c', a, 'nobody'], /no friend "nobody"/],
    [['friends', '-c', a, '--user', 'x'], /--user is for init/],
    [['id', '-c', plain], /has no <SocialVpnConfig> section/],
    [['id', '-c', join(dir, 'missing.xml')], /cannot read .*missing\.xml: no such file/],
  ];
  // None of these changes a file, so they run side by side.
  const results = await Promise.all(usage.map(([args]) => run(SVPN, args)));
  usage.forEach(([args, re], i) => {
    t.equal(results[i]!.code, 2, `exit 2: ${args.join(' ')}`);
    t.match(results[i]!.stderr, re, args.join(' '));
    t.equal(results[i]!.stdout, '', 'nothing on stdout');
  });

  const key = join(dir, 'a', 'user.key');
  const good = readFileSync(key, 'utf8');
  writeFileSync(key, good.slice(0, 40));
  r = await run(SVPN, ['id', '-c', a]);
  t.equal(r.code, 1, 'a truncated key file');
  t.match(r.stderr, /^socialvpn: user key file .*: not valid JSON \(corrupt or truncated user key file\?\)\n$/);
  r = await run(SVPN, ['init', '-c', a, '--user', 'alice']);
  t.equal(r.code, 1, 'init does not replace a corrupt key');
  t.equal(readFileSync(key, 'utf8'), good.slice(0, 40));
  writeFileSync(key, good);
  chmodSync(key, 0o644);
  r = await run(SVPN, ['id', '-c', a]);
  t.equal(r.code, 1, 'a key file others can read');
  t.match(r.stderr, /permissions 0644/);
  chmodSync(key, 0o600);

  mkdirSync(join(dir, 'a', 'svpn.xml.data'));
  writeFileSync(join(dir, 'a', 'svpn.xml.data', 'friends.json'), '{ broken');
  r = await run(SVPN, ['friends', '-c', a]);
  t.equal(r.code, 1, 'a corrupt friend list');
  t.match(r.stderr, /^socialvpn: friend list .*friends\.json: not valid JSON/);

  r = await run(SVPN, ['stop', '-c', a]);
  t.equal(r.code, 3, 'stop with nothing running: exit 3');
  t.match(r.stdout, /^socialvpn is not running/);
});
