// Installing a native flow and removing it again (IpopConfig/NativeFlows, src/vpn/native-path.ts),
// without a thread or a TAP: a SecureEdge lends its session's transport state to a FlowThread's
// table, sends and receives through it across rekeys in both directions, and takes the state
// back, after which its Session carries on where the flow stopped: the peer sees no replayed
// or reused counter, a packet the flow already opened is refused as a replay, and a straggler
// of the epoch before the peer's last rekey still opens within the grace period. A CONFIRM is
// opened and counted, not delivered, as SecureEdge does.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { groupKey } from '../src/edge/handshake.js';
import { Identity } from '../src/edge/identity.js';
import { FlowThread, nativeFlowsUnavailableReason } from '../src/edge/native-flows.js';
import { SecureEdge } from '../src/edge/secure-edge.js';
import { SecureEdgeListener } from '../src/edge/secure-listener.js';
import { T_CONFIRM, T_DATA } from '../src/edge/secure-wire.js';
import { newSessionStats, Session } from '../src/edge/session.js';
import type { Edge } from '../src/transport/edge.js';
import { VirtualLab } from './helpers/virtual.js';

const text = (p: Uint8Array) => Buffer.from(p).toString();
const bytes = (s: string) => new Uint8Array(Buffer.from(s));
const EDGE = 0x01020304;

function flowSpec(state: NonNullable<ReturnType<SecureEdge['lendTransport']>>) {
  return {
    ...state, localEdgeId: EDGE, remoteEdgeId: 0x05060708, self: new Uint8Array(20).fill(1), peer: new Uint8Array(20).fill(2), ttl: 12,
    localIp: 0x0a000001, peerIp: 0x0a000002, tapMac: new Uint8Array(6), gatewayMac: new Uint8Array(6),
  };
}

async function pair(t: Test) {
  const lab = new VirtualLab({ seed: 7 });
  t.teardown(() => lab.stop());
  const mk = () => new SecureEdgeListener(lab.listener(), {
    identity: Identity.generate(), groupKey: groupKey('g'), namespace: 'ns', clock: lab.clock, random: lab.random(),
    rekeyAfterPackets: 10, rekeyGraceMs: 5000,
  });
  const a = mk(), b = mk();
  await Promise.all([a.start(), b.start()]);
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  // b's packets to a can be held back (a straggler), then handed to a's edge by hand.
  const held: Uint8Array[] = [];
  let hold = false;
  const bEdges: SecureEdge[] = [];
  b.onEdge = (e) => bEdges.push(e as SecureEdge);
  const onEdge = b.inner.onEdge;
  b.inner.onEdge = (e: Edge) => {
    const send = e.send.bind(e);
    e.send = (p) => { if (hold) held.push(p.slice()); else send(p); };
    onEdge(e);
  };
  const ea = await a.createEdge(b.localTAs()[0]!) as SecureEdge;
  await lab.waitFor(() => bEdges.length === 1, 3000, 2);
  const eb = bEdges[0]!;
  const atA: string[] = [], atB: string[] = [];
  ea.onPacket = (p) => atA.push(text(p));
  eb.onPacket = (p) => atB.push(text(p));
  const settle = (what: () => boolean) => lab.waitFor(what, 3000, 2);
  return { lab, a, b, ea, eb, atA, atB, held, setHold: (h: boolean) => { hold = h; }, settle };
}

const why = nativeFlowsUnavailableReason();
if (why) {
  if (process.env.CI === 'true') t.fail(`native flows: ${why}`);
  else t.plan(0, `skip: native flows: ${why}`);
} else {
  t.test('a flow takes a secure edge\'s transport state and hands it back', async (t) => {
    const p = await pair(t);
    const flows = new FlowThread(false);
    t.teardown(() => flows.stop());
    for (let i = 0; i < 5; i++) p.ea.send(bytes(`ts ${i}`));
    for (let i = 0; i < 5; i++) p.eb.send(bytes(`b ${i}`));
    await p.settle(() => p.atB.length === 5 && p.atA.length === 5);

    const now = () => p.lab.clock.now();
    const state = p.ea.lendTransport({ seal: (ty, pt) => flows.sealTransport(EDGE, ty, pt, now()), open: (q) => flows.openTransport(EDGE, q, now()) });
    if (!state) { t.fail('lendTransport refused an established edge'); return; }
    t.equal(state.sendCounter, 5, 'the session\'s send counter goes to the flow');
    t.equal(p.ea.lendTransport({ seal: () => null, open: () => null }), undefined, 'an edge lends its state once');
    flows.install(flowSpec(state), '127.0.0.1', 9);

    // 30 each way while installed: both directions rekey (every 10 packets) on the flow's state.
    for (let i = 0; i < 30; i++) p.ea.send(bytes(`flow ${i}`));
    await p.settle(() => p.atB.length === 35);
    for (let i = 0; i < 24; i++) p.eb.send(bytes(`b flow ${i}`));
    await p.settle(() => p.atA.length === 29);
    // b's next two packets (the last of an epoch and the first of the next) are held back for after the hand-back.
    p.setHold(true);
    for (let i = 24; i < 26; i++) p.eb.send(bytes(`b flow ${i}`));
    p.setHold(false);
    for (let i = 26; i < 32; i++) p.eb.send(bytes(`b flow ${i}`));
    await p.settle(() => p.atA.length === 35);
    t.same(p.atB.slice(5), Array.from({ length: 30 }, (_, i) => `flow ${i}`), 'b got what a sent through the flow, in order');
    const st = flows.stats(EDGE)!;
    t.ok(st.rekeys >= 2, `the flow rekeyed its send direction (${st.rekeys})`);
    t.equal(p.ea.sendState?.counter, 5, 'the lent session did not advance meanwhile');

    const back = flows.take(EDGE);
    if (!back) { t.fail('take returned nothing'); return; }
    t.ok(back.prev, 'the previous receive epoch (in its grace period) comes back too');
    p.ea.returnTransport(back);
    t.equal(flows.stats(EDGE), undefined, 'the flow is gone');
    t.same(p.ea.sendState, { epoch: back.sendEpoch, counter: back.sendCounter }, 'the session continues from the flow\'s counter');

    const bStats = { ...p.b.stats };
    for (let i = 0; i < 12; i++) p.ea.send(bytes(`after ${i}`));
    await p.settle(() => p.atB.length === 47);
    t.same(p.atB.slice(35), Array.from({ length: 12 }, (_, i) => `after ${i}`), 'b opens the session\'s packets after the hand-back (a rekey among them)');
    t.equal(p.b.stats.replays, bStats.replays, 'no counter reused');
    t.equal(p.b.stats.decryptFailures, bStats.decryptFailures, 'no key mismatch');

    // The held packets were sealed in b's epoch before its latest; a is still in grace.
    const aBefore = { ...p.a.stats };
    for (const h of p.held) (p.ea.inner as Edge).onPacket(h.slice(), p.ea.inner);
    t.same(p.atA.slice(-2), ['b flow 24', 'b flow 25'], 'stragglers of the previous epoch open within the grace period');
    for (const h of p.held) (p.ea.inner as Edge).onPacket(h.slice(), p.ea.inner);
    t.equal(p.a.stats.replays - aBefore.replays, 2, 'and only once: the window came back with the state');
    t.equal(p.ea.lendTransport({ seal: () => null, open: () => null }), undefined, 'no new flow while the previous epoch is in grace');
    await p.lab.sleep(6000);
    t.ok(p.ea.lendTransport({ seal: () => null, open: () => null }), 'after the grace period the state can be lent again');
  });

  t.test('a CONFIRM is opened and counted, not delivered; a replay of it is refused', async (t) => {
    const k1 = new Uint8Array(randomBytes(32)), k2 = new Uint8Array(randomBytes(32));
    const clock = { now: () => 1000, setTimeout: () => ({ cancel() {} }), setInterval: () => ({ cancel() {} }) };
    const remote = new Session({ send: k2, recv: k1 }, { clock }, newSessionStats());
    const flows = new FlowThread(false);
    flows.install({
      localEdgeId: EDGE, remoteEdgeId: 9, sendKey: k1, recvKey: k2, sendEpoch: 0, recvEpoch: 0, sendCounter: 0, sendEpochStart: 1000,
      rekeyPackets: 100, rekeyMs: 60_000, graceMs: 1000, self: new Uint8Array(20), peer: new Uint8Array(20), ttl: 9,
      localIp: 1, peerIp: 2, tapMac: new Uint8Array(6), gatewayMac: new Uint8Array(6),
    }, '10.0.0.2', 4000);
    const confirm = remote.seal(T_CONFIRM, new Uint8Array(0));
    t.equal(flows.openTransport(EDGE, confirm, 1000), null, 'not delivered');
    t.equal(flows.stats(EDGE)!.confirms, 1, 'counted');
    t.equal(flows.openTransport(EDGE, confirm, 1000), null, 'the replay is refused');
    t.equal(flows.stats(EDGE)!.replays, 1, 'and counted as a replay');
    const data = remote.seal(T_DATA, bytes('hello'));
    t.equal(text(flows.openTransport(EDGE, data, 1000)!), 'hello', 'DATA after it opens');
    const sealed = flows.sealTransport(EDGE, T_CONFIRM, new Uint8Array(0), 1000)!;
    t.equal(remote.open(sealed)?.type, T_CONFIRM, 'the flow seals a CONFIRM the peer\'s Session opens');
    t.equal(flows.sealTransport(EDGE + 1, T_DATA, bytes('x'), 1000), null, 'no flow, no packet');
    t.throws(() => flows.install({ ...flowSpec({ ...remote.transportState() }) }, 'not-an-ip', 1), /not an IP address/, 'an endpoint must be an IP address');
  });
}
