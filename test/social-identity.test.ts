// SocialVPN identity: the user key file, friend codes and device certificates, with every
// bad input: corrupt key files, malformed codes, certificates from the wrong user, expired
// or tampered ones, and random bytes fed to the decoder.
import { chmodSync, copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import t from 'tap';
import { Address } from '../src/address/address.js';
import { Identity } from '../src/edge/identity.js';
import {
  DEFAULT_CERT_LIFETIME_S, decodeDeviceCert, DeviceCertError, issueDeviceCert, needsRenewal, verifyDeviceCert,
} from '../src/vpn/social/device-cert.js';
import { encodeFriendCode, parseFriendCode, userId } from '../src/vpn/social/friend-code.js';
import { SocialError, SocialInputError } from '../src/vpn/social/social-error.js';
import { UserKey } from '../src/vpn/social/user-key.js';
import { tempDir } from './helpers/procs.js';

const NOW = 1_780_000_000_000;

t.test('user key file: created 0600, reused, a different name refused, copies are the same user', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'sub', 'user.key');
  t.throws(() => UserKey.loadOrCreate(file), SocialInputError, 'creating needs a name');
  const a = UserKey.loadOrCreate(file, 'Alice');
  t.ok(a.created);
  t.equal(a.key.name, 'alice', 'names are lowercased');
  t.equal(a.key.publicKey.length, 32);
  t.equal(statSync(file).mode & 0o777, 0o600);
  const again = UserKey.loadOrCreate(file, 'alice');
  t.notOk(again.created);
  t.same(again.key.publicKey, a.key.publicKey);
  t.same(UserKey.loadOrCreate(file).key.publicKey, a.key.publicKey, 'no name: reuse');
  t.throws(() => UserKey.loadOrCreate(file, 'bob'), { name: 'SocialInputError', message: /holds the key of user alice, not bob/ });
  const copy = join(dir, 'other', 'user.key');
  UserKey.loadOrCreate(join(dir, 'other', 'x'), 'zed'); // makes the directory
  copyFileSync(file, copy);
  chmodSync(copy, 0o600);
  const b = UserKey.load(copy);
  t.equal(encodeFriendCode(b.name, b.publicKey), encodeFriendCode(a.key.name, a.key.publicKey), 'a copied key file gives the same friend code');
  const data = new TextEncoder().encode('hello');
  t.same(b.sign(data), a.key.sign(data), 'and signs alike (Ed25519 is deterministic)');
  for (const bad of ['', 'a b', 'x'.repeat(33), '-alice', 'bob-', 'ålice', 'a.b']) {
    t.throws(() => UserKey.generate(bad), SocialInputError, `name ${JSON.stringify(bad)}`);
  }
  t.equal(UserKey.generate('x'.repeat(32)).name.length, 32);
});

t.test('a corrupt, truncated, wrong-format or too-open user key file is a SocialError', async (t) => {
  const dir = tempDir(t);
  const good = UserKey.generate('alice').serialize();
  const j = JSON.parse(good) as Record<string, unknown>;
  const cases: Array<[string, string, RegExp]> = [
    ['empty', '', /not valid JSON/],
    ['truncated', good.slice(0, good.length / 2), /not valid JSON/],
    ['garbage', '\u0000\u0001binary', /not valid JSON/],
    ['an array', '[]', /not a brunet-ts-svpn-user file/],
    ['a node identity', JSON.stringify({ format: 'brunet-ts-identity', version: 1 }), /not a brunet-ts-svpn-user file/],
    ['version 2', JSON.stringify({ ...j, version: 2 }), /unsupported user key version 2/],
    ['no name', JSON.stringify({ ...j, name: undefined }), /missing or invalid user name/],
    ['bad name', JSON.stringify({ ...j, name: 'Not Valid' }), /missing or invalid user name/],
    ['short seed', JSON.stringify({ ...j, seed: Buffer.alloc(16).toString('base64') }), /seed must be 32 bytes, got 16/],
    ['seed not base64', JSON.stringify({ ...j, seed: '!!!' }), /seed missing or not base64/],
    ['public of another key', JSON.stringify({ ...j, public: Buffer.from(UserKey.generate('x').publicKey).toString('base64') }), /does not match the seed/],
  ];
  for (const [what, text, re] of cases) {
    const f = join(dir, `${what.replace(/ /g, '-')}.key`);
    writeFileSync(f, text, { mode: 0o600 });
    t.throws(() => UserKey.load(f), { name: 'SocialError', message: re }, what);
    t.throws(() => UserKey.loadOrCreate(f, 'alice'), SocialError, `${what}: loadOrCreate does not replace it`);
    t.equal(readFileSync(f, 'utf8'), text, `${what}: file untouched`);
  }
  const open = join(dir, 'open.key');
  writeFileSync(open, good, { mode: 0o644 });
  chmodSync(open, 0o644);
  t.throws(() => UserKey.load(open), { name: 'SocialError', message: /permissions 0644.*must be 0600/ });
  t.throws(() => UserKey.load(join(dir, 'missing.key')), { name: 'SocialError', message: /no user key at .*socialvpn init/ });
  t.throws(() => UserKey.load(dir), SocialError, 'a directory');
});

t.test('friend codes: one short line that round-trips; every malformation named', async (t) => {
  const k = UserKey.generate('alice');
  const code = encodeFriendCode(k.name, k.publicKey);
  t.match(code, /^svpn1:alice:[a-z2-7]{55}$/);
  t.ok(code.length < 80, `${code.length} characters`);
  t.notOk(/\s/.test(code), 'one line, no spaces');
  const p = parseFriendCode(code);
  t.equal(p.name, 'alice');
  t.same(p.publicKey, k.publicKey);
  t.same(parseFriendCode(`  ${code.toUpperCase()}\n`).publicKey, k.publicKey, 'case and surrounding white space do not matter');
  t.equal(encodeFriendCode('x'.repeat(32), k.publicKey).length, 94, 'longest name: 94 characters');
  const body = code.split(':')[2]!;
  const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === 'a' ? 'b' : 'a') + s.slice(i + 1);
  const bad: Array<[string, RegExp]> = [
    ['', /not a friend code/],
    ['hello there', /not a friend code/],
    [`svpn2:alice:${body}`, /not a friend code/],
    [`svpn1:alice`, /not a friend code/],
    [`svpn1:alice:${body}:x`, /not a friend code/],
    [`svpn1::${body}`, /user name "" must be/],
    [`svpn1:al ice:${body}`, /user name "al ice" must be/],
    [`svpn1:bob:${body}`, /checksum mismatch/],
    [`svpn1:alice:${flip(body, 10)}`, /checksum mismatch/],
    [`svpn1:alice:${body.slice(0, 54)}`, /has 54 characters, expected 55/],
    [`svpn1:alice:${body}a`, /has 56 characters, expected 55/],
    [`svpn1:alice:${body.slice(0, 54)}1`, /not base32/],
    [`svpn1:alice:${body.slice(0, 54)}${body[54] === 'z' ? 'y' : 'z'}`, /not canonical|checksum mismatch/],
  ];
  for (const [c, re] of bad) t.throws(() => parseFriendCode(c), { name: 'SocialInputError', message: re }, JSON.stringify(c));
  t.throws(() => encodeFriendCode('alice', new Uint8Array(31)), SocialInputError);
  t.match(userId(k.publicKey), /^[0-9a-f]{12}$/);
  t.equal(userId(k.publicKey), userId(Uint8Array.from(k.publicKey)), 'stable');
  t.not(userId(k.publicKey), userId(UserKey.generate('alice').publicKey));
  fc.assert(fc.property(fc.string({ maxLength: 120 }), (s) => {
    try { parseFriendCode(s); } catch (e) { return e instanceof SocialInputError; }
    return true;
  }), { numRuns: 2000 });
});

t.test('device certificates: issue, decode, verify, renew', async (t) => {
  const alice = UserKey.generate('alice');
  const node = Identity.generate().address;
  const cert = issueDeviceCert(alice, 'laptop', node, NOW);
  t.equal(cert.expiresAt - cert.issuedAt, DEFAULT_CERT_LIFETIME_S, 'default lifetime: 7 days');
  t.equal(cert.issuedAt, NOW / 1000);
  const d = decodeDeviceCert(cert.bytes);
  t.same([d.userName, d.deviceName, d.nodeAddress.key, d.issuedAt, d.expiresAt], ['alice', 'laptop', node.key, cert.issuedAt, cert.expiresAt]);
  t.same(d.userPublicKey, alice.publicKey);
  t.equal(cert.bytes.length, 1 + 32 + 1 + 5 + 1 + 6 + 20 + 8 + 8 + 64, 'layout as documented');
  t.equal(cert.bytes[0], 1, 'version 1');
  t.same(verifyDeviceCert(d, NOW), { ok: true });
  t.same(verifyDeviceCert(d, NOW, { nodeAddress: node }), { ok: true });
  t.same(verifyDeviceCert(d, NOW, { nodeAddress: Identity.generate().address }), { ok: false, reason: 'wrong node address' });
  t.notOk(needsRenewal(d, NOW + 3.4 * 86400_000));
  t.ok(needsRenewal(d, NOW + 3.5 * 86400_000), 'renew past half the lifetime');
  t.same(verifyDeviceCert(d, NOW + 7 * 86400_000 - 1000), { ok: true }, 'valid until its last second');
  t.same(verifyDeviceCert(d, NOW + 7 * 86400_000), { ok: false, reason: 'expired' });
  t.same(verifyDeviceCert(d, NOW - 3600_000), { ok: false, reason: 'not yet valid' });
  t.same(verifyDeviceCert(d, NOW - 60_000), { ok: true }, 'a little clock skew is tolerated');
  const short = issueDeviceCert(alice, 'phone', node, NOW, 60);
  t.same(verifyDeviceCert(short, NOW + 61_000), { ok: false, reason: 'expired' }, 'an expired certificate');
  t.throws(() => issueDeviceCert(alice, 'Bad Name', node, NOW), DeviceCertError);
  t.throws(() => issueDeviceCert(alice, 'x'.repeat(64), node, NOW), DeviceCertError);
  t.throws(() => issueDeviceCert(alice, 'laptop', node, NOW, 0), DeviceCertError);
  const long = issueDeviceCert(UserKey.generate('u'.repeat(32)), 'd'.repeat(63), node, NOW);
  t.same(decodeDeviceCert(long.bytes).deviceName, 'd'.repeat(63), 'longest names fit');
});

t.test('a wrong-user or tampered device certificate does not verify', async (t) => {
  const alice = UserKey.generate('alice');
  const mallory = UserKey.generate('mallory');
  const node = Identity.generate().address;
  const cert = issueDeviceCert(alice, 'laptop', node, NOW);
  // Mallory signs a certificate that names Alice's key: it must not pass as Alice's device.
  const forged = Buffer.from(issueDeviceCert(mallory, 'laptop', node, NOW).bytes);
  const asAlice = Buffer.concat([cert.bytes.subarray(0, 1), alice.publicKey, Buffer.from([5]), Buffer.from('alice'), forged.subarray(1 + 32 + 1 + 7)]);
  const wrong = decodeDeviceCert(asAlice);
  t.same(wrong.userPublicKey, alice.publicKey);
  t.same(verifyDeviceCert(wrong, NOW), { ok: false, reason: 'bad signature' }, 'signed by another user key than it names');
  // Every single-bit flip is caught: by the decoder or by the signature.
  let decoded = 0;
  for (let i = 0; i < cert.bytes.length * 8; i++) {
    const b = Uint8Array.from(cert.bytes);
    b[i >> 3]! ^= 1 << (i & 7);
    let c;
    try { c = decodeDeviceCert(b); } catch (e) { t.ok(e instanceof DeviceCertError); continue; }
    decoded++;
    const v = verifyDeviceCert(c, NOW);
    if (v.ok) t.fail(`bit ${i} flipped and it still verifies`);
  }
  t.ok(decoded > cert.bytes.length * 4, `${decoded} tampered certificates decoded, none verified`);
  const retimed = Buffer.from(cert.bytes);
  retimed.writeBigUInt64BE(BigInt(cert.expiresAt + 86400 * 365), cert.bytes.length - 64 - 8);
  t.same(verifyDeviceCert(decodeDeviceCert(retimed), NOW), { ok: false, reason: 'bad signature' }, 'a stretched expiry');
  const renamed = Buffer.from(cert.bytes);
  renamed[1 + 32 + 1 + 5 + 1] = 'm'.charCodeAt(0); // laptop -> maptop
  t.same(verifyDeviceCert(decodeDeviceCert(renamed), NOW), { ok: false, reason: 'bad signature' }, 'a renamed device');
});

t.test('decodeDeviceCert: malformed input throws DeviceCertError, never anything else', async (t) => {
  const cert = issueDeviceCert(UserKey.generate('alice'), 'laptop', Address.fromBytes(new Uint8Array(20)), NOW);
  const b = cert.bytes;
  const set = (i: number, v: number) => { const c = Uint8Array.from(b); c[i] = v; return c; };
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['empty', new Uint8Array(0), /too short/],
    ['one byte short', b.subarray(0, b.length - 1), /does not match its names/],
    ['one byte more', Buffer.concat([b, Buffer.from([0])]), /does not match its names/],
    ['too long', new Uint8Array(400), /too long/],
    ['version 2', set(0, 2), /unsupported version 2/],
    ['user name length 0', set(33, 0), /user name length 0/],
    ['user name length 40', set(33, 40), /user name length 40/],
    ['user name upper case', set(34, 'A'.charCodeAt(0)), /user name "Alice"/],
    ['device name length 0', set(39, 0), /device name length 0/],
    ['device name with a dot', set(40, '.'.charCodeAt(0)), /device name ".aptop"/],
    ['expiry before issue', (() => { const c = Buffer.from(b); c.writeBigUInt64BE(0n, b.length - 72); return c; })(), /before it is issued/],
    ['time beyond 2^53', (() => { const c = Buffer.from(b); c.writeBigUInt64BE(1n << 60n, b.length - 80); return c; })(), /issued-at .* out of range/],
  ];
  for (const [what, bytes, re] of cases) t.throws(() => decodeDeviceCert(bytes), { name: 'DeviceCertError', message: re }, what);
  const only = (f: () => unknown) => { try { f(); } catch (e) { return e instanceof DeviceCertError; } return true; };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (x) => only(() => decodeDeviceCert(x))), { numRuns: 5000 });
  // Mutations of a real certificate: most decode, and none throws anything but DeviceCertError.
  fc.assert(fc.property(fc.array(fc.tuple(fc.nat(b.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.integer({ min: -3, max: 3 }), (edits, cut) => {
    const c = Uint8Array.from(b);
    for (const [i, v] of edits) c[i] = v;
    const x = cut < 0 ? c.subarray(0, c.length + cut) : Buffer.concat([c, new Uint8Array(cut)]);
    return only(() => { const d = decodeDeviceCert(x); verifyDeviceCert(d, NOW); });
  }), { numRuns: 5000 });
});
