import dgram from 'node:dgram';
import t, { type Test } from 'tap';
import type { Edge } from '../src/transport/edge.js';
import { TransportAddress } from '../src/transport/ta.js';
import { advertisedHosts } from '../src/transport/ip.js';
import { UdpEdgeListener, UDP_MAX_PAYLOAD } from '../src/transport/udp.js';
import type { DatagramSocket } from '../src/transport/udp-socket.js';
import { FRAGMENT_HEADER, FRAGMENT_PAYLOAD, MAX_DATAGRAM } from '../src/transport/udp-fragments.js';
import { realClock, type Clock } from '../src/util/clock.js';
import { seededRandom } from '../src/util/random.js';
import { VirtualClock } from '../src/util/virtual-clock.js';

let seed = 1;
const mk = (port = 0, clock: Clock = realClock) => new UdpEdgeListener({ port, host: '127.0.0.1', clock, random: seededRandom(seed++) });

async function started(t: Test, n: number, clock: Clock = realClock): Promise<UdpEdgeListener[]> {
  const ls = Array.from({ length: n }, () => mk(0, clock));
  await Promise.all(ls.map((l) => l.start()));
  t.teardown(() => Promise.all(ls.map((l) => l.stop())));
  return ls;
}

/** Bounded poll: every wait in these tests must end (10 s: the suite runs three files at once on two cores). */
async function waitFor(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const text = (p: Uint8Array) => Buffer.from(p).toString();
const bytes = (s: string) => new Uint8Array(Buffer.from(s));
const ta0 = (l: UdpEdgeListener) => l.localTAs()[0]!;

function rawSocket(t: Test): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  t.teardown(() => new Promise<void>((r) => s.close(() => r())));
  return new Promise((r) => s.bind(0, '127.0.0.1', () => r(s)));
}

t.test('advertised addresses', async (t) => {
  t.same(advertisedHosts({ host: '127.0.0.1' }), ['127.0.0.1']);
  t.same(advertisedHosts({ advertise: ['10.1.2.3'] }), ['10.1.2.3']);
  t.same(advertisedHosts({ devices: ['lo'] }), ['127.0.0.1']);
  const all = advertisedHosts({});
  t.equal(all[all.length - 1], '127.0.0.1', 'loopback last');
});

t.test('edges in both directions', async (t) => {
  const [a, b] = await started(t, 2);
  t.match(ta0(a!).toString(), /^brunet\.udp:\/\/127\.0\.0\.1:\d+$/);
  const inbound: Edge[] = [];
  const gotB: string[] = [];
  b!.onEdge = (e) => { inbound.push(e); e.onPacket = (p) => gotB.push(text(p)); };
  const ea = await a!.createEdge(ta0(b!));
  t.notOk(ea.inbound);
  const gotA: string[] = [];
  ea.onPacket = (p) => gotA.push(text(p));
  ea.send(bytes('hello'));
  await waitFor('first packet', () => gotB.length === 1);
  t.equal(inbound.length, 1);
  const eb = inbound[0]!;
  t.ok(eb.inbound);
  t.equal(eb.remoteTA.port, ta0(a!).port, 'remoteTA is the sender socket');
  eb.send(bytes('back'));
  await waitFor('reply', () => gotA.length === 1);
  ea.send(bytes('again'));
  await waitFor('second packet', () => gotB.length === 2);
  t.same(gotB, ['hello', 'again']);
  t.same(gotA, ['back']);
  t.equal(inbound.length, 1, 'no duplicate inbound edge');
  t.equal(a!.edgeCount, 1);
  t.equal(b!.edgeCount, 1);
  await t.rejects(a!.createEdge(TransportAddress.parse('brunet.tcp://127.0.0.1:1')), /cannot reach/);
});

t.test('many edges multiplexed on one socket per listener', async (t) => {
  const ls = await started(t, 3);
  const got: string[] = [];
  for (const [i, l] of ls.entries()) {
    l.onEdge = (e) => {
      e.onPacket = (p) => {
        got.push(`${i}<${text(p)}@${e.remoteTA.port}`);
        e.send(bytes(`ack:${text(p)}`));
      };
    };
  }
  const acks: string[] = [];
  const out: Edge[] = [];
  for (const [i, from] of ls.entries()) {
    for (const [j, to] of ls.entries()) {
      if (i === j) continue;
      // Two parallel edges per ordered pair: same endpoints, told apart by edge id.
      for (const k of [0, 1]) {
        const e = await from.createEdge(ta0(to));
        const tag = `${i}>${j}#${k}`;
        e.onPacket = (p) => acks.push(`${tag}:${text(p)}`);
        e.send(bytes(tag));
        out.push(e);
      }
    }
  }
  await waitFor('all acks', () => acks.length === 12);
  const expected: string[] = [];
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (const k of [0, 1]) {
    if (i === j) continue;
    expected.push(`${j}<${i}>${j}#${k}@${ta0(ls[i]!).port}`);
  }
  t.same(got.sort(), expected.sort(), 'every packet reached the right listener from the right port');
  t.ok(acks.every((a) => { const [tag, ack] = a.split(':ack:'); return tag === ack; }), 'acks on the right edge');
  for (const l of ls) t.equal(l.edgeCount, 8, '4 outbound + 4 inbound');
  t.equal(new Set(out.map((e) => e.id)).size, 12);
});

t.test('close propagates both ways', async (t) => {
  const [a, b] = await started(t, 2);
  const inbound: Edge[] = [];
  const reasons: string[] = [];
  b!.onEdge = (e) => { inbound.push(e); e.onClose = (_e, r) => reasons.push(`b:${r}`); };
  const e1 = await a!.createEdge(ta0(b!));
  e1.send(bytes('x'));
  await waitFor('inbound', () => inbound.length === 1);
  e1.close();
  e1.close();
  t.ok(e1.closed);
  await waitFor('peer close', () => inbound[0]!.closed);
  t.same(reasons, ['b:closed by peer']);
  t.equal(b!.edgeCount, 0);

  const e2 = await a!.createEdge(ta0(b!));
  let closedA = '';
  e2.onClose = (_e, r) => { closedA = r; };
  e2.send(bytes('y'));
  await waitFor('second inbound', () => inbound.length === 2);
  // The outbound side has not heard from the peer yet; the close itself teaches it.
  inbound[1]!.close();
  await waitFor('outbound close', () => e2.closed);
  t.equal(closedA, 'closed by peer');
  t.equal(a!.edgeCount, 0);
});

t.test('unknown edge gets a reset; restarted peer resets a stale edge', async (t) => {
  const [a, b] = await started(t, 2);
  const raw = await rawSocket(t);
  const replies: Buffer[] = [];
  raw.on('message', (m) => replies.push(m));
  const bogus = Buffer.from([1, 0, 0, 0, 0, 7, 0xde, 0xad, 0xbe, 0xef, 42]);
  raw.send(bogus, ta0(b!).port, '127.0.0.1');
  await waitFor('reset', () => replies.length === 1);
  t.same([...replies[0]!], [1, 2, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 7], 'reset swaps the ids');
  t.equal(b!.edgeCount, 0, 'no edge created');

  // A "crashed" peer: a raw socket answers once by hand, then vanishes without a close.
  const ghost = dgram.createSocket('udp4');
  await new Promise<void>((r) => ghost.bind(0, '127.0.0.1', () => r()));
  const port = ghost.address().port;
  const ea = await a!.createEdge(new TransportAddress('udp', '127.0.0.1', port));
  let reason = '';
  ea.onClose = (_e, r) => { reason = r; };
  const first = new Promise<Buffer>((r) => ghost.once('message', r));
  ea.send(bytes('hi'));
  const hi = await first;
  t.equal(hi.readUInt32BE(6), 0, 'receiver id unknown at first');
  const reply = Buffer.from([1, 0, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 33]);
  hi.copy(reply, 6, 2, 6);
  ghost.send(reply, ta0(a!).port, '127.0.0.1');
  await waitFor('a hears ghost', () => a!.stats.packetsIn === 1);
  await new Promise<void>((r) => ghost.close(() => r()));
  const b2 = mk(port);
  await b2.start();
  t.teardown(() => b2.stop());
  ea.send(bytes('anyone?'));
  await waitFor('reset closes edge', () => ea.closed);
  t.equal(reason, 'reset by peer');
  t.equal(b2.edgeCount, 0);
  t.equal(b2.stats.resetsSent, 1);
});

t.test('resets are rate limited', async (t) => {
  const [b] = await started(t, 1);
  const raw = await rawSocket(t);
  for (let i = 1; i <= 150; i++) {
    const m = Buffer.alloc(10);
    m[0] = 1; m.writeUInt32BE(i, 2); m.writeUInt32BE(99, 6);
    raw.send(m, ta0(b!).port, '127.0.0.1');
  }
  await waitFor('all received', () => b!.stats.packetsIn === 150);
  t.ok(b!.stats.resetsSent <= 100, `sent ${b!.stats.resetsSent} resets`);
  t.ok(b!.stats.resetsSent >= 50);
});

t.test('malformed datagrams are counted and dropped', async (t) => {
  const [a, b] = await started(t, 2);
  const raw = await rawSocket(t);
  const port = ta0(b!).port;
  const bad = [
    Buffer.from([1, 0, 0]), // too short
    Buffer.from([9, 0, 0, 0, 0, 1, 0, 0, 0, 0, 5]), // wrong version
    Buffer.from([1, 7, 0, 0, 0, 1, 0, 0, 0, 0]), // unknown type
    Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]), // zero sender id
    Buffer.alloc(0),
  ];
  for (const m of bad) raw.send(m, port, '127.0.0.1');
  await waitFor('malformed counted', () => b!.stats.malformed === bad.length);
  t.equal(b!.edgeCount, 0);
  let got = '';
  b!.onEdge = (e) => { e.onPacket = (p) => { got = text(p); }; };
  const e = await a!.createEdge(ta0(b!));
  e.send(bytes('still alive'));
  await waitFor('good packet', () => got !== '');
  t.equal(got, 'still alive');
});

t.test('handler exceptions and oversize sends never escape', async (t) => {
  const [a, b] = await started(t, 2);
  let n = 0;
  b!.onEdge = (e) => { e.onPacket = () => { n++; throw new Error('boom'); }; };
  const e = await a!.createEdge(ta0(b!));
  e.send(new Uint8Array(UDP_MAX_PAYLOAD + 1));
  t.equal(a!.stats.sendErrors, 1, 'oversize dropped');
  e.send(new Uint8Array(65000));
  e.send(bytes('x'));
  await waitFor('both delivered', () => n === 2);
  t.equal(b!.stats.handlerErrors, 2);
});

t.test('port in use rejects clearly; stop releases the port', async (t) => {
  const [a] = await started(t, 1);
  const port = ta0(a!).port;
  const clash = mk(port);
  await t.rejects(clash.start(), { message: `udp port ${port}: address already in use` });
  await a!.stop();
  t.same(a!.localTAs(), []);
  const again = mk(port);
  await again.start();
  t.equal(ta0(again).port, port);
  await again.stop();
});

t.test('large messages travel as fragments, each datagram fitting a 1500-byte path', async (t) => {
  // Virtual time stands still: a fragment that came more than 10 real ms after its
  // predecessor (a busy machine) would otherwise be asked for, and resent, as if lost.
  const [a, b] = await started(t, 2, new VirtualClock());
  const got: Buffer[] = [];
  b!.onEdge = (e) => { e.onPacket = (p) => { got.push(Buffer.from(p)); }; };
  const e = await a!.createEdge(ta0(b!));
  const sizes = [MAX_DATAGRAM - 10, MAX_DATAGRAM - 9, FRAGMENT_PAYLOAD * 2, 65_549, UDP_MAX_PAYLOAD];
  const sent = sizes.map((n) => { const m = Buffer.alloc(n); for (let i = 0; i < n; i++) m[i] = (i * 7 + n) & 255; return m; });
  for (const m of sent) e.send(m);
  await waitFor('all messages', () => got.length === sizes.length);
  t.same(got.map((m) => m.length), sizes);
  t.ok(got.every((m, i) => m.equals(sent[i]!)), 'contents intact');
  t.equal(a!.stats.fragmentedOut, 4, 'only messages over one datagram are cut');
  const datagrams = 1 + sizes.slice(1).reduce((s, n) => s + Math.ceil(n / FRAGMENT_PAYLOAD), 0);
  t.equal(b!.stats.packetsIn, datagrams, 'one datagram per fragment');
  t.ok(b!.stats.bytesIn <= datagrams * MAX_DATAGRAM, 'no datagram over MAX_DATAGRAM');
  t.equal(b!.stats.fragmentDrops, 0);
});

// The receiver's repair timing (ask after 10 ms of quiet, again after 20 ms, give up after
// three) runs on a virtual clock: on a busy machine the test's own waits between fragments
// took longer than those windows on real time, and the receiver asked early and more often.
t.test('reassembly: duplicates, order, requests for lost fragments, giving up, malformed', async (t) => {
  const clock = new VirtualClock();
  const [b] = await started(t, 1, clock) as [UdpEdgeListener];
  const raw = await rawSocket(t);
  const port = ta0(b).port;
  const got: string[] = [];
  b.onEdge = (e) => { e.onPacket = (p) => { got.push(`${p.length}:${p[0]}:${p[p.length - 1]}`); }; };
  const requests: Array<{ id: number; missing: number[] }> = [];
  raw.on('message', (m) => {
    if (m[1] !== 4) return;
    const count = m.readUInt16BE(14), missing: number[] = [];
    for (let i = 0; i < count; i++) if (m[16 + (i >> 3)]! & (0x80 >> (i & 7))) missing.push(i);
    requests.push({ id: m.readUInt32BE(10), missing });
  });
  const frag = (id: number, index: number, count: number, len: number, fill: number): Buffer => {
    const d = Buffer.alloc(FRAGMENT_HEADER + len, fill);
    d[0] = 1; d[1] = 3; d.writeUInt32BE(77, 2); d.writeUInt32BE(0, 6);
    d.writeUInt32BE(id, 10); d.writeUInt16BE(index, 14); d.writeUInt16BE(count, 16);
    return d;
  };
  const send = async (d: Buffer): Promise<void> => {
    const before = b.stats.packetsIn + b.stats.malformed;
    raw.send(d, port, '127.0.0.1');
    await waitFor('datagram taken', () => b.stats.packetsIn + b.stats.malformed > before);
  };
  // Message 10 (3 fragments) with a duplicate in the middle: delivered once, whole.
  await send(frag(10, 0, 3, FRAGMENT_PAYLOAD, 1));
  await send(frag(10, 0, 3, FRAGMENT_PAYLOAD, 9));
  await send(frag(10, 2, 3, 5, 3));
  t.same(got, [], 'incomplete: nothing yet');
  await send(frag(10, 1, 3, FRAGMENT_PAYLOAD, 2));
  t.same(got, [`${2 * FRAGMENT_PAYLOAD + 5}:1:3`], 'whole message, duplicate ignored');
  await send(frag(10, 1, 3, FRAGMENT_PAYLOAD, 2));
  t.equal(got.length, 1, 'a late duplicate of a delivered message delivers nothing');

  // Message 11 loses fragment 1 of 3; message 12 overtakes it and is held back.
  await send(frag(11, 0, 3, FRAGMENT_PAYLOAD, 4));
  await send(frag(11, 2, 3, 8, 4));
  await send(frag(12, 0, 2, FRAGMENT_PAYLOAD, 5));
  await waitFor('a request for message 11', () => requests.length === 1);
  t.same(requests[0], { id: 11, missing: [1] }, 'the receiver asks for exactly what is missing');
  await send(frag(12, 1, 2, 8, 6));
  t.equal(got.length, 1, 'message 12 is complete but held behind 11');
  await send(frag(11, 1, 3, FRAGMENT_PAYLOAD, 4));
  t.same(got.slice(1), [`${2 * FRAGMENT_PAYLOAD + 8}:4:4`, `${FRAGMENT_PAYLOAD + 8}:5:6`], 'repaired, then both in the order sent');

  t.same(requests, [{ id: 11, missing: [1] }], 'no clock time passed: no request but the one at once');

  // Message 13 loses its last fragment and nothing follows: the timer asks, three times, then gives up.
  await send(frag(13, 0, 2, FRAGMENT_PAYLOAD, 7));
  await clock.advance(9);
  t.equal(b.stats.fragmentRequests, 1, 'not asked before 10 ms of quiet');
  await clock.advance(200);
  t.equal(b.stats.fragmentedLost, 1, 'message 13 given up');
  await waitFor('three requests for message 13', () => requests.filter((r) => r.id === 13).length >= 3);
  const for13 = requests.filter((r) => r.id === 13);
  t.equal(for13.length, 3, 'asked three times');
  t.ok(for13.every((r) => r.missing.length === 1 && r.missing[0] === 1), 'for the lost last fragment');
  await send(frag(14, 0, 2, FRAGMENT_PAYLOAD, 8));
  await send(frag(14, 1, 2, 3, 8));
  t.equal(got.length, 4, 'the next message arrives after the loss');

  // Stale and malformed: far older than the newest, a lone "fragment", index beyond count, short non-last, changed count.
  const drops = b.stats.fragmentDrops;
  await send(frag((14 - 200) >>> 0, 0, 2, FRAGMENT_PAYLOAD, 0));
  t.equal(b.stats.fragmentDrops - drops, 1, 'a straggler far behind is stale');
  await send(frag(15, 0, 1, 10, 0));
  await send(frag(15, 5, 3, 10, 0));
  await send(frag(15, 0, 3, 10, 0));
  await send(frag(16, 0, 3, FRAGMENT_PAYLOAD, 0));
  await send(frag(16, 1, 4, FRAGMENT_PAYLOAD, 0));
  t.equal(b.stats.fragmentDrops - drops, 5, 'malformed fragments counted');
  const bad = Buffer.alloc(17); bad[0] = 1; bad[1] = 4; bad.writeUInt32BE(77, 2); bad.writeUInt32BE(0, 6);
  const mal = b.stats.malformed;
  raw.send(bad, port, '127.0.0.1');
  await waitFor('malformed request', () => b.stats.malformed === mal + 1).catch(() => {});
  t.equal(b.stats.malformed, mal + 1, 'a malformed request is counted');
  t.equal(got.length, 4);
  t.equal(b.edgeCount, 1, 'one edge throughout');
});

// Repair windows in virtual time here too: it moves 1 ms per turn of the wait below (each at
// least 1 real ms), so a starved test process slows the protocol's clock as much as its sockets.
t.test('lost fragments are sent again on request; messages arrive whole and in order', async (t) => {
  const clock = new VirtualClock();
  const [a, b] = await started(t, 2, clock);
  // a's socket loses the first copy of every fragment whose index is 3 mod 7.
  const sock = (a as unknown as { socket: DatagramSocket }).socket;
  const send = sock.send.bind(sock);
  const sentOnce = new Set<string>();
  let lost = 0;
  (sock as { send: DatagramSocket['send'] }).send = (h, payload, host, port) => {
    const head = Buffer.from(h.buffer, h.byteOffset, h.length);
    if (head[1] === 3) {
      const key = `${head.readUInt32BE(10)}/${head.readUInt16BE(14)}`;
      if (head.readUInt16BE(14) % 7 === 3 && !sentOnce.has(key)) { sentOnce.add(key); lost++; return; }
    }
    send(h, payload, host, port);
  };
  const got: Buffer[] = [];
  b!.onEdge = (e) => { e.onPacket = (p) => { got.push(Buffer.from(p)); }; };
  const e = await a!.createEdge(ta0(b!));
  const sent: Buffer[] = [];
  for (let i = 0; i < 30; i++) {
    const m = Buffer.alloc(60_000 + i);
    m.writeUInt32BE(i, 0);
    for (let k = 4; k < m.length; k++) m[k] = (k * 31 + i) & 255;
    sent.push(m);
    e.send(m);
    await new Promise((r) => setTimeout(r, 2));
  }
  const end = Date.now() + 10_000;
  while (got.length < sent.length && Date.now() < end) {
    await clock.advance(1);
    await new Promise((r) => setTimeout(r, 1));
  }
  t.equal(got.length, sent.length, `all messages within 10 s (${clock.now()} virtual ms)`);
  t.ok(lost >= 30 * 5, `${lost} fragments lost on the way`);
  t.same(got.map((m) => m.readUInt32BE(0)), sent.map((_m, i) => i), 'in the order sent');
  t.ok(got.every((m, i) => m.equals(sent[i]!)), 'contents intact');
  // Every lost fragment is sent again; a request repeated while the first resend is on its way
  // (a busy machine) may resend a few twice, but never a storm.
  t.ok(a!.stats.fragmentsResent >= lost && a!.stats.fragmentsResent <= 2 * lost, `every lost fragment sent again (${a!.stats.fragmentsResent} resends for ${lost} lost)`);
  t.ok(b!.stats.fragmentRequests > 0 && b!.stats.fragmentRequests <= lost, `${b!.stats.fragmentRequests} requests`);
  t.equal(b!.stats.fragmentedLost, 0, 'nothing given up');
});
