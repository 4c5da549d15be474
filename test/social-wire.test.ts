// SocialVPN's own wire formats (src/vpn/social/wire.ts): the hello round-trips and rejects
// anything malformed with SocialWireError only; discovery records open only with the user key
// they were sealed for, and any change to one is refused; the record key depends on the user key.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import t from 'tap';
import { decodeHello, encodeHello, FLAG_ANSWER, FLAG_FRIEND, openRecord, recordKey, sealRecord, SocialWireError } from '../src/vpn/social/wire.js';

const onlyWireErrors = (f: () => unknown): boolean => {
  try { f(); return true; } catch (e) { return e instanceof SocialWireError; }
};

t.test('hello: round trip and layout', async (t) => {
  const cert = randomBytes(150);
  const h = { flags: FLAG_FRIEND | FLAG_ANSWER, ownIp: 0xac1f0001, yourIp: 0xac1f0a0b, cert: new Uint8Array(cert) };
  const b = encodeHello(h);
  t.equal(b.length, 14 + 150);
  t.same([...b.subarray(0, 4)], [1, 1, 3, 0], 'version, kind, flags, reserved');
  t.same([...b.subarray(4, 12)], [172, 31, 0, 1, 172, 31, 10, 11], 'addresses big-endian');
  t.same([...b.subarray(12, 14)], [0, 150], 'certificate length');
  t.same(decodeHello(b), h);
});

t.test('hello: malformed input is a SocialWireError', async (t) => {
  const good = encodeHello({ flags: 0, ownIp: 1, yourIp: 0, cert: new Uint8Array(10) });
  const bad = (what: string, f: (b: Uint8Array) => Uint8Array) => t.throws(() => decodeHello(f(good.slice())), SocialWireError, what);
  bad('too short', (b) => b.subarray(0, 13));
  bad('version', (b) => { b[0] = 2; return b; });
  bad('kind', (b) => { b[1] = 9; return b; });
  bad('unknown flag', (b) => { b[2] = 4; return b; });
  bad('reserved byte', (b) => { b[3] = 1; return b; });
  bad('length beyond the message', (b) => { b[13] = 11; return b; });
  bad('trailing bytes', (b) => Buffer.concat([b, Buffer.from([0])]));
  t.throws(() => encodeHello({ flags: 0, ownIp: 0, yourIp: 0, cert: new Uint8Array(2000) }), SocialWireError, 'an oversized certificate is not sent');
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => onlyWireErrors(() => decodeHello(b))), { seed: 15, numRuns: 3000 });
  fc.assert(fc.property(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 }), (i, x) => {
    const m = good.slice();
    m[i] ^= x;
    return onlyWireErrors(() => decodeHello(m));
  }), { seed: 16, numRuns: 2000 });
});

t.test('discovery records', async (t) => {
  const alice = randomBytes(32), bob = randomBytes(32);
  const cert = randomBytes(180);
  const r = sealRecord(alice, cert);
  t.equal(r.length, 1 + 12 + 180 + 16);
  t.same(Buffer.from(openRecord(alice, r)), cert, 'opens with the user key it was sealed for');
  t.throws(() => openRecord(bob, r), SocialWireError, 'not with another user\'s');
  t.not(Buffer.from(sealRecord(alice, cert)).toString('hex'), Buffer.from(r).toString('hex'), 'a fresh nonce each time');
  t.match(Buffer.from(recordKey(alice)).toString(), /^svpn:[0-9a-f]{32}$/, 'the key: svpn:<locator>');
  t.same(recordKey(alice), recordKey(Buffer.from(alice)), 'stable');
  t.not(Buffer.from(recordKey(alice)).toString(), Buffer.from(recordKey(bob)).toString(), 'per user');
  t.equal(Buffer.from(recordKey(alice)).indexOf(alice.subarray(0, 8)), -1, 'the user key does not appear in it');
  fc.assert(fc.property(fc.nat(r.length - 1), fc.integer({ min: 1, max: 255 }), (i, x) => {
    const m = r.slice();
    m[i] ^= x;
    return !onlyWireErrors(() => openRecord(alice, m)) ? false : (() => { try { openRecord(alice, m); return false; } catch { return true; } })();
  }), { seed: 17, numRuns: 500 });
  t.throws(() => openRecord(alice, r.subarray(0, 20)), SocialWireError, 'truncated');
});
