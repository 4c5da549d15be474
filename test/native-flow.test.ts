// The native flow table (native/flow*.cc, src/edge/native-flows.ts) against the TypeScript
// path it stands in for: a datagram it seals is byte for byte the one UdpEdge + Session +
// Router.sendLent would send for the same frame and session state, each side opens what the
// other seals (across rekeys), and it refuses what Session.open refuses (replays, tampering,
// unknown epochs), counting each as Session does. Whatever it does not deliver itself goes
// back to TypeScript: the plaintext of other authenticated packets, and foreign datagrams unchanged.
import t from 'tap';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { Address } from '../src/address/address.js';
import { FlowVerdict, FLOW_MAX_FRAME, NativeFlowTable, nativeFlowsUnavailableReason, type FlowSpec } from '../src/edge/native-flows.js';
import { T_DATA } from '../src/edge/secure-wire.js';
import { newSessionStats, Session } from '../src/edge/session.js';
import { decodeAh, encodeAh, Mode, Payload } from '../src/routing/ah-wire.js';
import { VirtualClock } from '../src/util/virtual-clock.js';

const rnd = (n: number) => new Uint8Array(randomBytes(n));
const LOCAL_IP = 0x0a920001, PEER_IP = 0x0a920002, TTL = 12, LOCAL_EDGE = 0x11223344, REMOTE_EDGE = 0x55667788;

/** An Ethernet frame carrying an IPv4 packet src → dst with `payload` bytes after a 20-byte header. */
function ipFrame(src: number, dst: number, payload: number, fill = 0xab): Uint8Array {
  const f = new Uint8Array(14 + 20 + payload).fill(fill);
  f[12] = 0x08; f[13] = 0x00;
  f[14] = 0x45;
  const total = 20 + payload;
  f[16] = total >> 8; f[17] = total & 0xff;
  new DataView(f.buffer).setUint32(14 + 12, src);
  new DataView(f.buffer).setUint32(14 + 16, dst);
  return f;
}

function udpHeader(sender: number, receiver: number): Uint8Array {
  const h = new Uint8Array(10);
  h[0] = 1; h[1] = 0;
  new DataView(h.buffer).setUint32(2, sender);
  new DataView(h.buffer).setUint32(6, receiver);
  return h;
}

const cat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

interface Pair {
  table: NativeFlowTable; spec: FlowSpec; clock: VirtualClock; self: Address; peer: Address;
  /** What TypeScript on our side would send: the same session state as the flow. */
  ref: Session;
  /** The peer's session (TypeScript): sends with our receive key, receives with our send key. */
  remote: Session;
}

function pair(o: { rekeyPackets?: number; rekeyMs?: number } = {}): Pair {
  const clock = new VirtualClock(1000);
  const k1 = rnd(32), k2 = rnd(32), self = Address.fromBytes(rnd(20)), peer = Address.fromBytes(rnd(20));
  const opts = { clock, rekeyAfterPackets: o.rekeyPackets, rekeyAfterMs: o.rekeyMs };
  const spec: FlowSpec = {
    localEdgeId: LOCAL_EDGE, remoteEdgeId: REMOTE_EDGE, sendKey: k1, recvKey: k2, sendEpoch: 0, recvEpoch: 0, sendCounter: 0, sendEpochStart: clock.now(),
    rekeyPackets: o.rekeyPackets ?? 2 ** 20, rekeyMs: o.rekeyMs ?? 120_000, graceMs: 10_000,
    self: self.bytes, peer: peer.bytes, ttl: TTL, localIp: LOCAL_IP, peerIp: PEER_IP, tapMac: rnd(6), gatewayMac: rnd(6),
  };
  const table = new NativeFlowTable();
  table.install(spec);
  return {
    table, spec, clock, self, peer,
    ref: new Session({ send: k1, recv: k2 }, opts, newSessionStats()),
    remote: new Session({ send: k2, recv: k1 }, opts, newSessionStats()),
  };
}

/** The datagram the TypeScript path sends for frame: UDP header + Session.seal(AH header + frame). */
function tsDatagram(s: Session, from: Address, to: Address, sender: number, receiver: number, frame: Uint8Array, ptype = Payload.Ip): Uint8Array {
  const ah = encodeAh({ mode: Mode.Exact, flags: 0, hops: 1, ttl: TTL, src: from, dst: to, ptype }, frame);
  return cat(udpHeader(sender, receiver), s.seal(T_DATA, ah));
}

const why = nativeFlowsUnavailableReason();
if (why) {
  if (process.env.CI === 'true') t.fail(`native flows: ${why}`);
  else t.plan(0, `skip: native flows: ${why}`);
} else {
  t.test('a sealed datagram is byte for byte the TypeScript path\'s, and the peer\'s Session opens it', async (t) => {
    const p = pair();
    for (const size of [0, 1, 100, 1000, FLOW_MAX_FRAME - 34]) {
      const frame = ipFrame(LOCAL_IP, PEER_IP, size, size & 0xff);
      const native = p.table.seal(PEER_IP, frame, p.clock.now());
      t.ok(native, `a ${frame.length}-byte frame is sealed`);
      t.same(Buffer.from(native!), Buffer.from(tsDatagram(p.ref, p.self, p.peer, LOCAL_EDGE, REMOTE_EDGE, frame)), `${frame.length}-byte frame: the same bytes`);
      const opened = p.remote.open(native!.subarray(10));
      t.ok(opened, 'the peer opens it');
      const ah = decodeAh(opened!.plaintext);
      t.ok(ah.src.equals(p.self) && ah.dst.equals(p.peer) && ah.ptype === Payload.Ip && ah.mode === Mode.Exact, 'routing header as Router.sendLent writes it');
      t.same(Buffer.from(opened!.plaintext.subarray(49)), Buffer.from(frame), 'the frame intact');
    }
    t.equal(p.table.stats(LOCAL_EDGE)!.sealed, 5);
  });

  t.test('frames the flow does not send stay TypeScript\'s', async (t) => {
    const p = pair();
    t.equal(p.table.seal(PEER_IP, ipFrame(LOCAL_IP, PEER_IP, FLOW_MAX_FRAME - 33), 0), null, 'one byte over one datagram');
    t.equal(p.table.seal(PEER_IP, ipFrame(LOCAL_IP + 5, PEER_IP, 10), 0), null, 'another source');
    t.equal(p.table.seal(PEER_IP, ipFrame(LOCAL_IP, PEER_IP + 1, 10), 0), null, 'another destination');
    t.equal(p.table.seal(PEER_IP + 1, ipFrame(LOCAL_IP, PEER_IP + 1, 10), 0), null, 'no flow to that address');
    const arp = ipFrame(LOCAL_IP, PEER_IP, 10); arp[13] = 0x06;
    t.equal(p.table.seal(PEER_IP, arp, 0), null, 'not IPv4');
    const short = ipFrame(LOCAL_IP, PEER_IP, 10); short[17] = 200;
    t.equal(p.table.seal(PEER_IP, short, 0), null, 'IPv4 length beyond the frame');
    t.equal(p.table.stats(LOCAL_EDGE)!.sendCounter, 0, 'no counter used');
  });

  t.test('a frame the peer\'s TypeScript path sends is opened, checked and readied for the TAP', async (t) => {
    const p = pair();
    const frame = ipFrame(PEER_IP, LOCAL_IP, 300);
    const d = tsDatagram(p.remote, p.peer, p.self, REMOTE_EDGE, LOCAL_EDGE, frame);
    const r = p.table.open(new Uint8Array(d), p.clock.now());
    t.equal(r.verdict, FlowVerdict.Frame);
    const want = new Uint8Array(frame);
    want.set(p.spec.tapMac, 0); want.set(p.spec.gatewayMac, 6);
    t.same(Buffer.from(r.data!), Buffer.from(want), 'the frame with its MACs rewritten as ipop-node.ts deliver() does');
    t.equal(p.table.open(new Uint8Array(d), p.clock.now()).verdict, FlowVerdict.Drop, 'the same datagram again is a replay');
    const bad = new Uint8Array(tsDatagram(p.remote, p.peer, p.self, REMOTE_EDGE, LOCAL_EDGE, frame));
    bad[bad.length - 20]! ^= 1;
    t.equal(p.table.open(bad, p.clock.now()).verdict, FlowVerdict.Drop, 'a flipped bit does not authenticate');
    const s = p.table.stats(LOCAL_EDGE)!;
    t.match(s, { opened: 1, frames: 1, replays: 1, decryptFailures: 1 }, 'counted as Session counts them');
  });

  t.test('other authenticated packets go to TypeScript as plaintext; foreign datagrams unchanged', async (t) => {
    const p = pair();
    const cases: Array<[string, Uint8Array]> = [
      ['an RPC message', tsDatagram(p.remote, p.peer, p.self, REMOTE_EDGE, LOCAL_EDGE, rnd(80), Payload.Rpc)],
      ['an offloaded frame', tsDatagram(p.remote, p.peer, p.self, REMOTE_EDGE, LOCAL_EDGE, cat(rnd(10), ipFrame(PEER_IP, LOCAL_IP, 50)), Payload.IpOffload)],
      ['a spoofed source IP', tsDatagram(p.remote, p.peer, p.self, REMOTE_EDGE, LOCAL_EDGE, ipFrame(PEER_IP + 1, LOCAL_IP, 50))],
      ['a broadcast', tsDatagram(p.remote, p.peer, p.self, REMOTE_EDGE, LOCAL_EDGE, ipFrame(PEER_IP, 0xffffffff, 50))],
      ['a routed source address', tsDatagram(p.remote, Address.fromBytes(rnd(20)), p.self, REMOTE_EDGE, LOCAL_EDGE, ipFrame(PEER_IP, LOCAL_IP, 50))],
      ['a link-layer message', cat(udpHeader(REMOTE_EDGE, LOCAL_EDGE), p.remote.seal(T_DATA, Uint8Array.of(0x01, 2, 3, 4)))],
    ];
    for (const [what, d] of cases) {
      const r = p.table.open(new Uint8Array(d), p.clock.now());
      t.equal(r.verdict, FlowVerdict.Plaintext, `${what}: plaintext for TypeScript`);
      // What the peer sealed, as Session.open on our side would return it.
      t.ok(r.data && r.data.length === d.length - 10 - 10 - 16, `${what}: the whole plaintext`);
    }
    const rpc = rnd(80);
    const r = p.table.open(new Uint8Array(tsDatagram(p.remote, p.peer, p.self, REMOTE_EDGE, LOCAL_EDGE, rpc, Payload.Rpc)), p.clock.now());
    const ah = decodeAh(r.data!);
    t.ok(ah.ptype === Payload.Rpc && ah.src.equals(p.peer), 'an RPC plaintext decodes as its routing header');
    t.same(Buffer.from(r.data!.subarray(49)), Buffer.from(rpc), 'with its payload');
    const frame = ipFrame(PEER_IP, LOCAL_IP, 10);
    const foreign: Array<[string, Uint8Array]> = [
      ['another edge', tsDatagram(p.remote, p.peer, p.self, REMOTE_EDGE, LOCAL_EDGE + 1, frame)],
      ['a fragment', (() => { const d = tsDatagram(p.remote, p.peer, p.self, REMOTE_EDGE, LOCAL_EDGE, frame); d[1] = 3; return d; })()],
      ['a handshake packet', cat(udpHeader(REMOTE_EDGE, LOCAL_EDGE), Uint8Array.of(0x01, 1, 0), rnd(48))],
      ['a close', Uint8Array.of(1, 1, 0x55, 0x66, 0x77, 0x88, 0x11, 0x22, 0x33, 0x44)],
      ['a short datagram', Uint8Array.of(1, 0, 0)],
    ];
    for (const [what, d] of foreign) {
      const copy = new Uint8Array(d);
      t.equal(p.table.open(copy, p.clock.now()).verdict, FlowVerdict.NotMine, `${what}: not the flow's`);
      t.same(Buffer.from(copy), Buffer.from(d), `${what}: left as it was`);
    }
  });

  t.test('rekeying both ways matches the TypeScript session across epochs', async (t) => {
    const p = pair({ rekeyPackets: 3 });
    for (let i = 0; i < 10; i++) {
      const frame = ipFrame(LOCAL_IP, PEER_IP, 20 + i);
      const native = p.table.seal(PEER_IP, frame, p.clock.now())!;
      t.same(Buffer.from(native), Buffer.from(tsDatagram(p.ref, p.self, p.peer, LOCAL_EDGE, REMOTE_EDGE, frame)), `packet ${i}: same bytes (epoch ${native[11]})`);
      t.ok(p.remote.open(native.subarray(10)), `packet ${i}: the peer opens it`);
      const back = p.table.open(tsDatagram(p.remote, p.peer, p.self, REMOTE_EDGE, LOCAL_EDGE, ipFrame(PEER_IP, LOCAL_IP, 20 + i)), p.clock.now());
      t.equal(back.verdict, FlowVerdict.Frame, `packet ${i} back: opened`);
    }
    t.equal(p.table.stats(LOCAL_EDGE)!.rekeys, 3, 'three rekeys in ten packets, as Session');
    t.equal(p.table.stats(LOCAL_EDGE)!.sendEpoch, 3);
    // A time-driven rekey too.
    const q = pair({ rekeyMs: 50 });
    await q.clock.advance(60);
    const frame = ipFrame(LOCAL_IP, PEER_IP, 10);
    const native = q.table.seal(PEER_IP, frame, q.clock.now())!;
    t.equal(native[11], 1, 'after rekeyMs the epoch moves on');
    t.same(Buffer.from(native), Buffer.from(tsDatagram(q.ref, q.self, q.peer, LOCAL_EDGE, REMOTE_EDGE, frame)), 'the same bytes');
  });

  t.test('the previous epoch is kept for graceMs, then refused', async (t) => {
    const p = pair({ rekeyPackets: 2 });
    const frame = () => ipFrame(PEER_IP, LOCAL_IP, 10);
    const old = tsDatagram(p.remote, p.peer, p.self, REMOTE_EDGE, LOCAL_EDGE, frame()); // epoch 0, counter 0
    const old2 = tsDatagram(p.remote, p.peer, p.self, REMOTE_EDGE, LOCAL_EDGE, frame()); // epoch 0, counter 1
    const next = tsDatagram(p.remote, p.peer, p.self, REMOTE_EDGE, LOCAL_EDGE, frame()); // epoch 1
    t.equal(p.table.open(next, p.clock.now()).verdict, FlowVerdict.Frame, 'the next epoch opens');
    t.equal(p.table.open(old, p.clock.now()).verdict, FlowVerdict.Frame, 'a straggler of the previous one too');
    await p.clock.advance(10_001);
    t.equal(p.table.open(old2, p.clock.now()).verdict, FlowVerdict.Drop, 'after the grace period it is refused');
    t.equal(p.table.stats(LOCAL_EDGE)!.badEpoch, 1);
  });

  t.test('property: any frame, any size that fits, any counter position: same bytes as TypeScript, and it round-trips', async (t) => {
    const p = pair({ rekeyPackets: 7 });
    fc.assert(fc.property(fc.integer({ min: 0, max: FLOW_MAX_FRAME - 34 }), fc.integer({ min: 0, max: 255 }), (size, fill) => {
      const frame = ipFrame(LOCAL_IP, PEER_IP, size, fill);
      const native = p.table.seal(PEER_IP, frame, p.clock.now())!;
      if (!Buffer.from(native).equals(Buffer.from(tsDatagram(p.ref, p.self, p.peer, LOCAL_EDGE, REMOTE_EDGE, frame)))) return false;
      const opened = p.remote.open(native.subarray(10));
      if (!opened || !Buffer.from(opened.plaintext.subarray(49)).equals(Buffer.from(frame))) return false;
      const back = ipFrame(PEER_IP, LOCAL_IP, size, fill);
      const r = p.table.open(tsDatagram(p.remote, p.peer, p.self, REMOTE_EDGE, LOCAL_EDGE, back), p.clock.now());
      return r.verdict === FlowVerdict.Frame && Buffer.from(r.data!.subarray(12)).equals(Buffer.from(back.subarray(12)));
    }), { numRuns: 300 });
    t.pass('300 frames');
  });

  t.test('a flow takes over a session in use (Session.transportState): counters and replay window carry on', async (t) => {
    const p = pair({ rekeyPackets: 4 });
    const fromPeer = () => tsDatagram(p.remote, p.peer, p.self, REMOTE_EDGE, LOCAL_EDGE, ipFrame(PEER_IP, LOCAL_IP, 30));
    const seen: Uint8Array[] = [];
    for (let i = 0; i < 6; i++) {
      t.ok(p.remote.open(tsDatagram(p.ref, p.self, p.peer, LOCAL_EDGE, REMOTE_EDGE, ipFrame(LOCAL_IP, PEER_IP, 30)).subarray(10)), `TypeScript packet ${i} opens`);
      const d = fromPeer();
      t.ok(p.ref.open(d.subarray(10)), `the peer's packet ${i} opens in TypeScript`);
      seen.push(d);
    }
    const late = fromPeer(); // sealed before the hand-over, arriving after it
    const st = p.ref.transportState();
    t.match(st, { sendEpoch: 1, sendCounter: 2, recvEpoch: 1 }, 'six packets with rekeys every four: epoch 1, counter 2');
    const table = new NativeFlowTable();
    table.install({ ...p.spec, ...st });
    const frame = ipFrame(LOCAL_IP, PEER_IP, 30);
    const native = table.seal(PEER_IP, frame, p.clock.now())!;
    t.same(Buffer.from(native), Buffer.from(tsDatagram(p.ref, p.self, p.peer, LOCAL_EDGE, REMOTE_EDGE, frame)), 'the flow\'s next datagram is the one TypeScript would have sent next');
    t.ok(p.remote.open(native.subarray(10)), 'and the peer opens it');
    t.equal(table.open(new Uint8Array(seen[5]!), p.clock.now()).verdict, FlowVerdict.Drop, 'a packet TypeScript opened before the hand-over is a replay');
    t.equal(table.open(late, p.clock.now()).verdict, FlowVerdict.Frame, 'one still in flight opens');
    t.match(table.stats(LOCAL_EDGE), { replays: 1, frames: 1 });
    t.throws(() => table.install({ ...p.spec, recvWindow: { top: 3, bits: new Uint32Array(8) } }), /recvWindow/, 'a window of the wrong size is refused');
  });

  t.test('install and remove', async (t) => {
    const p = pair();
    t.ok(p.table.remove(LOCAL_EDGE), 'removed');
    t.notOk(p.table.remove(LOCAL_EDGE), 'once');
    t.equal(p.table.seal(PEER_IP, ipFrame(LOCAL_IP, PEER_IP, 10), 0), null, 'no flow, nothing sealed');
    t.throws(() => p.table.install({ ...p.spec, sendKey: rnd(31) }), /sendKey: expected 32 bytes/, 'a bad spec is refused with a one-line reason');
  });
}
