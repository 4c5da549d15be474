import t, { type Test } from 'tap';
import { HandshakeState, groupKey } from '../src/edge/handshake.js';
import { Identity, addressOf } from '../src/edge/identity.js';
import { generateX25519 } from '../src/edge/primitives.js';
import { SecureEdge } from '../src/edge/secure-edge.js';
import { SecureEdgeListener, securePrologue, type SecureListenerOptions } from '../src/edge/secure-listener.js';
import type { PeerInfo } from '../src/edge/secure-types.js';
import { T_CONFIRM, T_FINISH, T_REPLY, T_RETRY, encodeHello } from '../src/edge/secure-wire.js';
import type { Edge, EdgeListener } from '../src/transport/edge.js';
import type { MemoryEdgeListener } from '../src/transport/memory.js';
import { UdpEdgeListener } from '../src/transport/udp.js';
import { realClock, type Clock } from '../src/util/clock.js';
import { createLogger } from '../src/util/log.js';
import { cryptoRandom } from '../src/util/random.js';
import { VirtualLab } from './helpers/virtual.js';

const KEY = groupKey('test group secret');
const OTHER_KEY = groupKey('some other group');
const NS = 'test-namespace';
const bytes = (s: string) => new Uint8Array(Buffer.from(s));
const text = (p: Uint8Array) => Buffer.from(p).toString();

/** The in-memory tests run in virtual time: a VirtualLab per test, stopped in its teardown. */
function labFor(t: Test, seed: number): VirtualLab {
  const lab = new VirtualLab({ seed });
  t.teardown(() => lab.stop());
  return lab;
}

/** Waits (in the lab's virtual time, up to `ms`) for cond; throws naming `what` if it never holds. */
async function waitFor(lab: VirtualLab, what: string, cond: () => boolean, ms = 3000): Promise<void> {
  if (!(await lab.waitFor(cond, ms, 2))) throw new Error(`timed out waiting for ${what}`);
}

/** The same in real time, for the real-socket test. */
async function waitReal(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

type Opts = Partial<SecureListenerOptions> & { inner?: EdgeListener };
function secure(lab: VirtualLab, o: Opts = {}): SecureEdgeListener & { inner: MemoryEdgeListener } {
  const inner = o.inner ?? lab.listener();
  return new SecureEdgeListener(inner, {
    identity: Identity.generate(), groupKey: KEY, namespace: NS, clock: lab.clock, random: lab.random(), ...o,
  }) as SecureEdgeListener & { inner: MemoryEdgeListener };
}

async function started<L extends EdgeListener>(t: Test, ...ls: L[]): Promise<L[]> {
  await Promise.all(ls.map((l) => l.start()));
  t.teardown(() => Promise.all(ls.map((l) => l.stop())));
  return ls;
}

function collect(l: EdgeListener): { edges: SecureEdge[]; got: string[] } {
  const r = { edges: [] as SecureEdge[], got: [] as string[] };
  l.onEdge = (e) => { r.edges.push(e as SecureEdge); e.onPacket = (p) => r.got.push(text(p)); };
  return r;
}

/** Records every packet an inner edge sends; `drop` may swallow some. */
function tap(e: Edge, log: Uint8Array[], drop: (p: Uint8Array) => boolean = () => false): void {
  const send = e.send.bind(e);
  e.send = (p) => { log.push(p.slice()); if (!drop(p)) send(p); };
}
/** Taps every inner edge of a listener, inbound and outbound. Call after wrapping it. */
function tapListener(l: EdgeListener, log: Uint8Array[], drop?: (p: Uint8Array) => boolean): void {
  const onEdge = l.onEdge;
  l.onEdge = (e) => { tap(e, log, drop); onEdge(e); };
  const create = l.createEdge.bind(l);
  l.createEdge = async (ta) => { const e = await create(ta); tap(e, log, drop); return e; };
}

t.test('members establish edges both ways, authenticate each other and exchange packets', async (t) => {
  const lab = labFor(t, 91);
  const [a, b] = await started(t, secure(lab), secure(lab));
  const ra = collect(a!), rb = collect(b!);
  const e = await a!.createEdge(b!.localTAs()[0]!);
  t.ok(e instanceof SecureEdge);
  t.equal(rb.edges.length, 1, 'responder onEdge fired once established');
  const be = rb.edges[0]!;
  t.ok(be.inbound);
  t.notOk(e.inbound);
  t.ok(e.peer.address.equals(b!.identity.address), 'initiator learned the responder address');
  t.ok(e.peer.address.equals(addressOf(e.peer.publicKey)), 'peer address = addressOf(peer key)');
  t.ok(be.peer.address.equals(a!.identity.address));
  t.ok(be.peer.address.equals(addressOf(be.peer.publicKey)));
  t.equal(e.kind, 'function');
  t.ok(e.remoteTA.equals(b!.localTAs()[0]!));

  const back: string[] = [];
  e.onPacket = (p) => back.push(text(p));
  for (let i = 0; i < 20; i++) e.send(bytes(`a→b ${i}`));
  be.send(bytes('b→a'));
  await waitFor(lab, 'delivery', () => rb.got.length === 20 && back.length === 1);
  t.same(rb.got, Array.from({ length: 20 }, (_, i) => `a→b ${i}`));
  t.same(back, ['b→a']);

  const e2 = await b!.createEdge(a!.localTAs()[0]!);
  t.ok(e2.peer.address.equals(a!.identity.address), 'the other direction works too');
  await waitFor(lab, 'a onEdge', () => ra.edges.length === 1);
  for (const l of [a!, b!]) {
    t.equal(l.edgeCount, 2);
    t.equal(l.securityAssociations, 2);
    t.equal(l.wrappedEdges, 2);
    t.equal(l.stats.handshakesOk, 2);
    t.same(l.stats.handshakesFailed, {});
  }
  t.equal(b!.stats.retriesSent, 1, 'one cookie round per inbound handshake');

  const closed: string[] = [];
  be.onClose = (_e, reason) => closed.push(reason);
  e.close('done');
  t.ok(e.closed);
  await waitFor(lab, 'close propagates', () => closed.length === 1);
  t.equal(a!.edgeCount, 1);
  t.equal(b!.edgeCount, 1);
  const before = a!.stats.sendErrors;
  e.send(bytes('after close'));
  t.equal(a!.stats.sendErrors, before + 1, 'send after close is dropped and counted');
});

t.test('a different group key cannot connect, in either direction', async (t) => {
  const lab = labFor(t, 92);
  const lines: string[] = [];
  const log = createLogger('info', '', (l) => lines.push(l));
  const [m, o] = await started(t, secure(lab, { log }), secure(lab, { groupKey: OTHER_KEY, log }));
  const rm = collect(m!), ro = collect(o!);
  await t.rejects(o!.createEdge(m!.localTAs()[0]!), { name: 'HandshakeFailure', kind: 'auth', message: /handshake with brunet\.function:\/\/sim:\d+: authentication failed/ });
  t.equal(m!.stats.handshakesFailed.auth, 1, 'member counted the failure');
  t.equal(o!.stats.handshakesFailed.auth, 1);
  await t.rejects(m!.createEdge(o!.localTAs()[0]!), /authentication failed/);
  await lab.sleep(50);
  t.equal(rm.edges.length, 0, 'the member never saw an edge from the outsider');
  t.equal(ro.edges.length, 0);
  t.equal(m!.edgeCount, 0);
  t.equal(m!.pendingHandshakes, 0);
  t.equal(m!.wrappedEdges, 0);
  t.equal(m!.stats.handshakesFailed.auth, 2);
  t.ok(lines.some((l) => /WARN .*secure handshake from .* failed: authentication failed/.test(l)), 'failure logged with reason');
});

t.test('a different namespace times out with a hint', async (t) => {
  const lab = labFor(t, 93);
  const [m, o] = await started(t, secure(lab), secure(lab, { namespace: 'elsewhere', handshakeTimeoutMs: 800 }));
  // The responder cannot read the HELLO and closes the edge; on a lossy path the initiator times out instead.
  await t.rejects(o!.createEdge(m!.localTAs()[0]!), { message: /(connection closed during handshake|timed out after the cookie exchange).*different namespace or protocol version/ });
  t.equal(m!.stats.handshakesFailed.protocol, 1);
  t.equal(m!.edgeCount, 0);
});

t.test('a silent peer makes createEdge time out after retransmissions', async (t) => {
  const lab = labFor(t, 94);
  const [a] = await started(t, secure(lab, { handshakeTimeoutMs: 1200 }));
  const [silent] = await started(t, lab.listener());
  const t0 = lab.now();
  await t.rejects(a!.createEdge(silent!.ta), { kind: 'timeout', message: /timed out \(no answer\)/ });
  t.ok(lab.now() - t0 >= 1100);
  t.ok(a!.stats.retransmits >= 2, `retransmitted ${a!.stats.retransmits} times`);
  t.equal(a!.stats.handshakesFailed.timeout, 1);
  t.equal(a!.wrappedEdges, 0);
});

t.test('lost REPLY, FINISH and CONFIRM are recovered by retransmission', async (t) => {
  const lab = labFor(t, 95);
  const a = secure(lab), b = secure(lab);
  const dropped = new Set<number>();
  const dropFirst = (p: Uint8Array) => {
    if ([T_REPLY, T_FINISH, T_CONFIRM].includes(p[0]!) && !dropped.has(p[0]!)) { dropped.add(p[0]!); return true; }
    return false;
  };
  tapListener(a.inner, [], dropFirst);
  tapListener(b.inner, [], dropFirst);
  await started(t, a, b);
  const rb = collect(b);
  const e = await a.createEdge(b.localTAs()[0]!);
  t.same([...dropped].sort(), [T_REPLY, T_FINISH, T_CONFIRM].sort());
  t.ok(a.stats.retransmits >= 2);
  t.ok(b.stats.retransmits >= 1, 'responder answered duplicates');
  e.send(bytes('hi'));
  await waitFor(lab, 'data', () => rb.got.length === 1);
  t.equal(b.edgeCount, 1);
});

t.test('tampered, truncated, replayed and too-old packets are dropped and counted; the edge keeps working', async (t) => {
  const lab = labFor(t, 96);
  const [a, b] = await started(t, secure(lab), secure(lab));
  const rb = collect(b!);
  const e = await a!.createEdge(b!.localTAs()[0]!);
  const wire: Uint8Array[] = [];
  let hold = false;
  const send = e.inner.send.bind(e.inner);
  e.inner.send = (p) => { wire.push(p.slice()); if (!hold) send(p); };
  const capture = (s: string): Uint8Array => { hold = true; e.send(bytes(s)); hold = false; return wire[wire.length - 1]!; };

  const c1 = capture('one');
  const flipped = c1.slice(); flipped[c1.length - 5]! ^= 0x01;
  send(flipped);
  const hdrFlip = c1.slice(); hdrFlip[9]! ^= 0x01; // counter is authenticated as AD
  send(hdrFlip);
  send(c1.subarray(0, 15));
  send(c1.subarray(0, c1.length - 1));
  send(c1);
  await waitFor(lab, 'c1', () => rb.got.length === 1);
  send(c1);
  send(c1);
  const old = capture('old');
  for (let i = 0; i < 2100; i++) e.send(bytes(`n${i}`));
  await waitFor(lab, 'bulk', () => rb.got.length === 2101);
  send(old);
  e.send(bytes('still works'));
  await waitFor(lab, 'after', () => rb.got.length === 2102);
  t.equal(rb.got[0], 'one');
  t.equal(rb.got[2101], 'still works');
  t.notOk(rb.got.includes('old'));
  const st = b!.stats;
  t.equal(st.decryptFailures, 3, 'bit flips and a truncated tag fail authentication');
  t.equal(st.malformed, 1, 'a packet shorter than header + tag is malformed');
  t.equal(st.replays, 2);
  t.equal(st.tooOld, 1);
  t.equal(b!.edgeCount, 1);
});

t.test('rekeying with tiny thresholds keeps traffic flowing across many epochs', async (t) => {
  const lab = labFor(t, 97);
  const [a, b] = await started(t, secure(lab, { rekeyAfterPackets: 50 }), secure(lab, { rekeyAfterPackets: 50 }));
  const rb = collect(b!);
  const e = await a!.createEdge(b!.localTAs()[0]!);
  const back: string[] = [];
  e.onPacket = (p) => back.push(text(p));
  await waitFor(lab, 'responder edge', () => rb.edges.length === 1);
  for (let i = 0; i < 500; i++) {
    e.send(bytes(`a${i}`));
    if (i < 300) rb.edges[0]!.send(bytes(`b${i}`));
  }
  await waitFor(lab, 'all delivered', () => rb.got.length === 500 && back.length === 300);
  t.same(rb.got, Array.from({ length: 500 }, (_, i) => `a${i}`), 'in order, nothing lost');
  t.equal(e.sendState!.epoch, 9);
  t.ok(a!.stats.rekeys >= 9 && b!.stats.rekeys >= 5);
  t.equal(b!.stats.decryptFailures + b!.stats.badEpoch + a!.stats.badEpoch, 0);

  // Every packet in its own epoch: the one-byte epoch wraps around and keeps working.
  const [c, d] = await started(t, secure(lab, { rekeyAfterPackets: 1 }), secure(lab));
  const rd = collect(d!);
  const ec = await c!.createEdge(d!.localTAs()[0]!);
  for (let i = 0; i < 600; i++) ec.send(bytes(`w${i}`));
  await waitFor(lab, 'wrap', () => rd.got.length === 600);
  t.equal(ec.sendState!.epoch, 599 & 0xff);

  // Time-based rekeying.
  const [f, g] = await started(t, secure(lab, { rekeyAfterMs: 40 }), secure(lab));
  const rg = collect(g!);
  const ef = await f!.createEdge(g!.localTAs()[0]!);
  for (let i = 0; i < 8; i++) { ef.send(bytes(`t${i}`)); await lab.sleep(25); }
  await waitFor(lab, 'timed', () => rg.got.length === 8);
  t.ok(ef.sendState!.epoch >= 3, `epoch ${ef.sendState!.epoch} after ~200 ms`);
});

t.test('the responder holds no state for spoofed HELLOs without a valid cookie', async (t) => {
  const lab = labFor(t, 98);
  const [m] = await started(t, secure(lab));
  const [attacker, attacker2] = await started(t, lab.listener(), lab.listener());
  const retries: Uint8Array[] = [];
  let maxPending = 0;
  const hello = (cookie?: Uint8Array) => encodeHello(cookie, cryptoRandom.bytes(48));
  for (let i = 0; i < 100; i++) {
    const edge = await attacker!.createEdge(m!.localTAs()[0]!);
    edge.onPacket = (p) => retries.push(p);
    for (let j = 0; j < 10; j++) edge.send(hello());
    maxPending = Math.max(maxPending, m!.pendingHandshakes);
  }
  await waitFor(lab, '1000 retries', () => retries.length === 1000);
  t.equal(maxPending, 0);
  t.equal(m!.pendingHandshakes, 0, 'pending-handshake map stayed empty');
  t.equal(m!.wrappedEdges, 0);
  t.equal(m!.stats.retriesSent, 1000);
  t.ok(retries.every((p) => p[0] === T_RETRY && p.length === 18), 'retries are small (no amplification)');

  // A cookie is bound to the source TA and the ephemeral key: replaying it elsewhere fails.
  const stolen = retries[0]!.subarray(2);
  const other = await attacker2!.createEdge(m!.localTAs()[0]!);
  other.onPacket = () => {};
  for (let j = 0; j < 10; j++) other.send(hello(stolen));
  await waitFor(lab, 'cookies checked', () => m!.stats.cookiesInvalid === 10);
  t.equal(m!.pendingHandshakes, 0);

  // Members still get through during the flood.
  const [a] = await started(t, secure(lab));
  const e = await a!.createEdge(m!.localTAs()[0]!);
  t.ok(e.peer.address.equals(m!.identity.address));
  t.equal(m!.securityAssociations, 1);
});

t.test('cookies of the current and previous secret are accepted, older ones are not', async (t) => {
  const lab = labFor(t, 99);
  let offset = 0;
  const clock: Clock = { now: () => lab.clock.now() + offset, setTimeout: (f, ms) => lab.clock.setTimeout(f, ms), setInterval: (f, ms) => lab.clock.setInterval(f, ms) };
  const [m] = await started(t, secure(lab, { clock }));
  const [raw] = await started(t, lab.listener());
  const got: Uint8Array[] = [];
  const edge = await raw!.createEdge(m!.localTAs()[0]!);
  edge.onPacket = (p) => got.push(p);
  // A genuine message 1 (the responder must be able to read it to answer).
  const msg1 = new HandshakeState({ initiator: true, prologue: securePrologue(NS), psk: KEY, s: generateX25519() }).writeMessage(new Uint8Array(0));
  edge.send(encodeHello(undefined, msg1));
  await waitFor(lab, 'retry', () => got.length === 1);
  const cookie = got[0]!.subarray(2);
  offset += 120_000; // next rotation period: the cookie is now from the previous secret
  edge.send(encodeHello(cookie, msg1));
  await waitFor(lab, 'reply', () => got.length === 2);
  t.equal(got[1]![0], T_REPLY);
  t.equal(m!.pendingHandshakes, 1, 'state only after the source address was proven');

  const edge2 = await raw!.createEdge(m!.localTAs()[0]!);
  const got2: Uint8Array[] = [];
  edge2.onPacket = (p) => got2.push(p);
  edge2.send(encodeHello(undefined, msg1));
  await waitFor(lab, 'retry 2', () => got2.length === 1);
  offset += 240_000;
  edge2.send(encodeHello(got2[0]!.subarray(2), msg1));
  await waitFor(lab, 'retry 3', () => got2.length === 2);
  t.equal(got2[1]![0], T_RETRY, 'a cookie two rotations old is refused');
  t.equal(m!.stats.cookiesInvalid, 1);
});

t.test('no plaintext, identity key or static key appears on the wire', async (t) => {
  const lab = labFor(t, 100);
  const a = secure(lab), b = secure(lab);
  const wire: Uint8Array[] = [];
  tapListener(a.inner, wire);
  tapListener(b.inner, wire);
  await started(t, a, b);
  const rb = collect(b);
  const e = await a.createEdge(b.localTAs()[0]!);
  const secret = 'TOP-SECRET-PAYLOAD-0123456789';
  for (let i = 0; i < 5; i++) e.send(bytes(secret));
  await waitFor(lab, 'delivery', () => rb.got.length === 5);
  rb.edges[0]!.send(bytes(secret));
  await lab.sleep(10);
  t.ok(wire.length >= 12, `${wire.length} packets captured`);
  const all = Buffer.concat(wire);
  const needles: [string, Uint8Array][] = [
    ['payload', bytes(secret)], ['payload prefix', bytes('TOP-SECRET')],
    ['a identity key', a.identity.publicKey], ['b identity key', b.identity.publicKey],
    ['a static key', a.identity.x25519.publicKey], ['b static key', b.identity.x25519.publicKey],
  ];
  for (const [what, n] of needles) t.equal(all.indexOf(Buffer.from(n)), -1, `no ${what} in clear`);
});

t.test('verifyPeer can refuse, on either side, and sees the certificate', async (t) => {
  const lab = labFor(t, 101);
  const aId = Identity.generate();
  const seen: PeerInfo[] = [];
  const b = secure(lab, {
    verifyPeer: (info) => { seen.push(info); return info.address.equals(aId.address) ? 'not on the list' : null; },
  });
  const a = secure(lab, { identity: aId, certificate: bytes('cert-of-a') });
  const c = secure(lab, { certificate: bytes('cert-of-c') });
  await started(t, a, b, c);
  const rb = collect(b);
  await t.rejects(a.createEdge(b.localTAs()[0]!), { kind: 'refused-by-peer', message: /refused by peer: not on the list/ });
  t.equal(b.stats.handshakesFailed.refused, 1);
  t.equal(a.stats.handshakesFailed['refused-by-peer'], 1);
  t.equal(text(seen[0]!.certificate!), 'cert-of-a', 'certificate passed through opaquely');
  const ec = await c.createEdge(b.localTAs()[0]!);
  t.ok(ec.peer.address.equals(b.identity.address));
  t.equal(text(seen[1]!.certificate!), 'cert-of-c');
  t.equal(rb.edges.length, 1, 'only the accepted peer reached onEdge');

  // The initiator refuses the responder: it tells the responder, which drops its state at once.
  const picky = secure(lab, { verifyPeer: () => 'responder not trusted' });
  await started(t, picky);
  await t.rejects(picky.createEdge(b.localTAs()[0]!), { kind: 'refused', message: /peer refused: responder not trusted/ });
  await waitFor(lab, 'responder state dropped', () => b.pendingHandshakes === 0 && b.stats.handshakesFailed['refused-by-peer'] === 1);
  t.equal(rb.edges.length, 1);
});

t.test('UDP on 127.0.0.1: handshake and traffic over real sockets', async (t) => {
  const mk = () => new SecureEdgeListener(
    new UdpEdgeListener({ port: 0, host: '127.0.0.1', clock: realClock, random: cryptoRandom }),
    { identity: Identity.generate(), groupKey: KEY, namespace: NS, clock: realClock, random: cryptoRandom },
  );
  const [a, b] = await started(t, mk(), mk());
  t.equal(a!.kind, 'udp');
  const rb = collect(b!);
  const e = await a!.createEdge(b!.localTAs()[0]!);
  t.ok(e.peer.address.equals(b!.identity.address));
  const back: string[] = [];
  e.onPacket = (p) => back.push(text(p));
  for (let i = 0; i < 10; i++) e.send(bytes(`u${i}`));
  await waitReal('udp delivery', () => rb.got.length === 10);
  rb.edges[0]!.send(bytes('pong'));
  await waitReal('udp reply', () => back.length === 1);
  t.same(new Set(rb.got), new Set(Array.from({ length: 10 }, (_, i) => `u${i}`)));
  t.equal(b!.securityAssociations, 1);
  t.ok(rb.edges[0]!.peer.address.equals(a!.identity.address));
});
