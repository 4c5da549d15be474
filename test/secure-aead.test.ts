// The two ChaCha20-Poly1305 backends (sodium-native and node:crypto) are interchangeable:
// byte-identical output, each opens the other's, both reject tampering, sealing and opening
// in place give the same bytes, and secure edges on different backends talk to each other.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { defaultAead, nodeAead, sodiumAead, type AeadBackend } from '../src/edge/aead.js';
import { groupKey } from '../src/edge/handshake.js';
import { Identity } from '../src/edge/identity.js';
import { aeadDecrypt, aeadEncrypt, aeadEncryptInto, CryptoFailure } from '../src/edge/primitives.js';
import type { SecureEdge } from '../src/edge/secure-edge.js';
import { SecureEdgeListener } from '../src/edge/secure-listener.js';
import { T_DATA } from '../src/edge/secure-wire.js';
import { newSessionStats, Session } from '../src/edge/session.js';
import type { EdgeListener } from '../src/transport/edge.js';
import { MemoryNetwork } from '../src/transport/memory.js';
import { UdpEdgeListener } from '../src/transport/udp.js';
import { realClock } from '../src/util/clock.js';
import { cryptoRandom } from '../src/util/random.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const rnd = (n: number) => new Uint8Array(randomBytes(n));

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

t.test('sodium-native loads and is the default unless BRUNET_AEAD=node', async (t) => {
  t.ok(sodiumAead, 'sodium-native is a dependency and must load here');
  t.equal(defaultAead.name, process.env.BRUNET_AEAD === 'node' ? 'node' : 'sodium');
});

const sodium = sodiumAead!;
const BACKENDS: AeadBackend[] = [nodeAead, sodium];
const other = (b: AeadBackend) => (b === nodeAead ? sodium : nodeAead);
const NONCES = [0, 1, 255, 2 ** 32 - 1, 2 ** 32 + 5, 2 ** 53 - 1];
const SIZES = [0, 1, 63, 64, 100, 1400, 9000];

t.test('both backends seal byte-identically and open each other\'s packets', async (t) => {
  if (!sodiumAead) return;
  const k = rnd(32);
  let cases = 0;
  for (const n of NONCES) for (const size of SIZES) for (const adLen of [0, 10, 33]) {
    const ad = rnd(adLen), pt = rnd(size);
    const [a, b] = BACKENDS.map((be) => aeadEncrypt(k, n, ad, pt, be));
    if (hex(a!) !== hex(b!)) { t.fail(`n=${n} size=${size} ad=${adLen}: sealed bytes differ`); continue; }
    for (const be of BACKENDS) {
      const pa = aeadDecrypt(k, n, ad, a!, be);
      if (hex(pa) !== hex(pt)) t.fail(`${be.name} did not open n=${n} size=${size}`);
    }
    cases++;
  }
  t.equal(cases, NONCES.length * SIZES.length * 3, 'every case identical and opened by both');
});

t.test('sealing and opening in place give the same bytes as out of place', async (t) => {
  if (!sodiumAead) return;
  const k = rnd(32), ad = rnd(10);
  for (const be of BACKENDS) for (const size of [0, 1400]) {
    const pt = rnd(size);
    const reference = aeadEncrypt(k, 7, ad, pt, nodeAead);
    // A buffer with 10 bytes of header room in front and room for the tag behind.
    const buf = new Uint8Array(10 + size + 16);
    buf.set(pt, 10);
    aeadEncryptInto(k, 7, ad, buf.subarray(10, 10 + size), buf, 10, be);
    t.equal(hex(buf.subarray(10)), hex(reference), `${be.name}: sealed in place, ${size} bytes`);
    const ct = buf.subarray(10);
    t.ok(be.openInto(k, 7, ad, ct, ct.subarray(0, size)), `${be.name}: opened in place`);
    t.equal(hex(ct.subarray(0, size)), hex(pt));
  }
});

t.test('both backends reject tampering, leaving zeros rather than unauthenticated plaintext', async (t) => {
  if (!sodiumAead) return;
  const k = rnd(32), ad = rnd(10), pt = rnd(200);
  const sealed = aeadEncrypt(k, 42, ad, pt, sodium);
  const variants: [string, Uint8Array, Uint8Array, number, Uint8Array][] = [];
  for (const i of [0, 100, 199, 200, 215]) {
    const c = Uint8Array.from(sealed);
    c[i]! ^= 0x01;
    variants.push([`bit flipped at ${i}`, k, ad, 42, c]);
  }
  const ad2 = Uint8Array.from(ad); ad2[3]! ^= 0x80;
  const k2 = Uint8Array.from(k); k2[31]! ^= 1;
  variants.push(['other AD', k, ad2, 42, sealed], ['other nonce', k, ad, 43, sealed], ['other key', k2, ad, 42, sealed],
    ['truncated', k, ad, 42, sealed.subarray(0, sealed.length - 1)], ['shorter than a tag', k, ad, 42, sealed.subarray(0, 15)]);
  for (const be of BACKENDS) {
    for (const [what, kk, aa, n, c] of variants) {
      const out = new Uint8Array(Math.max(0, c.length - 16)).fill(0xee);
      t.notOk(be.openInto(kk, n, aa, c, out), `${be.name}: ${what} rejected`);
      t.ok(out.every((x) => x === 0), `${be.name}: ${what} left zeros, no unauthenticated plaintext`);
      t.throws(() => aeadDecrypt(kk, n, aa, c, be), CryptoFailure);
    }
    // In place: a forged packet keeps its tag, its ciphertext is zeroed.
    const c = Uint8Array.from(sealed); c[5]! ^= 4;
    const tag = hex(c.subarray(200));
    t.notOk(be.openInto(k, 42, ad, c, c.subarray(0, c.length - 16)));
    t.ok(c.subarray(0, 200).every((x) => x === 0), `${be.name}: a forged packet opened in place is zeroed`);
    t.equal(hex(c.subarray(200)), tag);
  }
});

t.test('Session: packets sealed on one backend open on the other; open() keeps the packet, openInPlace() reuses it', async (t) => {
  if (!sodiumAead) return;
  const keys = { send: rnd(32), recv: rnd(32) };
  const mirror = { send: keys.recv, recv: keys.send };
  for (const be of BACKENDS) {
    const tx = new Session(keys, { clock: realClock, rekeyAfterPackets: 3, aead: be }, newSessionStats());
    const txRef = new Session(keys, { clock: realClock, rekeyAfterPackets: 3, aead: other(be) }, newSessionStats());
    const rx = new Session(mirror, { clock: realClock, aead: other(be) }, newSessionStats());
    const rxInPlace = new Session(mirror, { clock: realClock, aead: other(be) }, newSessionStats());
    for (let i = 0; i < 10; i++) {
      const pt = rnd(i * 150);
      const p = tx.seal(T_DATA, pt);
      t.equal(hex(p), hex(txRef.seal(T_DATA, pt)), `${be.name} packet ${i} byte-identical (epoch ${tx.sendState.epoch})`);
      const copy = hex(p);
      const o = rx.open(p);
      t.equal(o && hex(o.plaintext), hex(pt));
      t.equal(hex(p), copy, 'open() left the packet as it was');
      const o2 = rxInPlace.openInPlace(p);
      t.equal(o2 && hex(o2.plaintext), hex(pt));
      t.equal(o2!.plaintext.buffer, p.buffer, 'openInPlace() returns a view into the packet');
      t.equal(o2!.plaintext.constructor, Uint8Array, 'a plain Uint8Array');
    }
    t.same(rx.stats, { ...newSessionStats() }, 'nothing rejected');
    const forged = tx.seal(T_DATA, rnd(100));
    forged[40]! ^= 1;
    t.equal(rxInPlace.openInPlace(forged), null, 'a forged packet is rejected in place');
    t.equal(rxInPlace.stats.decryptFailures, 1);
    t.equal(tx.stats.rekeys, 3);
  }
});

async function exchange(t: Test, mk: () => EdgeListener, rekeyAfterPackets: number, n: number): Promise<void> {
  const key = groupKey('aead interop');
  const listeners = BACKENDS.map((aead) => new SecureEdgeListener(mk(), {
    identity: Identity.generate(), groupKey: key, namespace: 'aead-test', clock: realClock, random: cryptoRandom, rekeyAfterPackets, aead,
  }));
  await Promise.all(listeners.map((l) => l.start()));
  t.teardown(() => Promise.all(listeners.map((l) => l.stop())));
  const [nodeSide, sodiumSide] = listeners as [SecureEdgeListener, SecureEdgeListener];
  const got: Record<string, string[]> = { node: [], sodium: [] };
  let inbound: SecureEdge | undefined;
  sodiumSide.onEdge = (e) => { inbound = e as SecureEdge; e.onPacket = (p) => got.sodium!.push(Buffer.from(p).toString()); };
  const e = await nodeSide.createEdge(sodiumSide.localTAs()[0]!);
  e.onPacket = (p) => got.node!.push(Buffer.from(p).toString());
  await waitFor('inbound edge', () => inbound !== undefined);
  for (let i = 0; i < n; i++) {
    e.send(Buffer.from(`from node ${i} ${'x'.repeat(i % 1400)}`));
    inbound!.send(Buffer.from(`from sodium ${i}`));
    if (i % 20 === 19) await waitFor('batch', () => got.sodium!.length === i + 1 && got.node!.length === i + 1);
  }
  await waitFor('all', () => got.sodium!.length === n && got.node!.length === n);
  t.same(new Set(got.sodium), new Set(Array.from({ length: n }, (_, i) => `from node ${i} ${'x'.repeat(i % 1400)}`)));
  t.same(new Set(got.node), new Set(Array.from({ length: n }, (_, i) => `from sodium ${i}`)));
  for (const l of listeners) t.equal(l.stats.decryptFailures + l.stats.badEpoch + l.stats.malformed, 0, 'nothing rejected');
  t.ok(nodeSide.stats.rekeys >= Math.floor(n / rekeyAfterPackets) - 1, 'rekeyed along the way');
}

t.test('a node:crypto edge and a sodium edge exchange data both ways (memory transport, rekeying)', async (t) => {
  if (!sodiumAead) return;
  const net = new MemoryNetwork();
  await exchange(t, () => net.listener(), 25, 200);
});

t.test('a node:crypto edge and a sodium edge exchange data both ways (UDP on 127.0.0.1)', async (t) => {
  if (!sodiumAead) return;
  await exchange(t, () => new UdpEdgeListener({ port: 0, host: '127.0.0.1', clock: realClock, random: cryptoRandom }), 50, 100);
});
