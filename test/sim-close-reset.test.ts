// Closes and resets on the simulated network behave as UDP's do (udp.ts): a close is a counted
// datagram that a full receive buffer can drop; a packet that reaches an edge closed on its
// side draws a reset (at most 100 a second per listener) from a running listener, never from
// a crashed one. In virtual time, with a fake meter for the measured processor.
import t from 'tap';
import type { Edge } from '../src/transport/edge.js';
import { CONTROL_BYTES, type ControlKind } from '../src/transport/memory.js';
import { SimNetwork } from '../src/transport/sim.js';
import { seededRandom } from '../src/util/random.js';
import { VirtualClock } from '../src/util/virtual-clock.js';

/** A meter that only moves when a callback "works". */
function fake() {
  let ms = 0;
  return { read: () => ms, work: (x: number) => { ms += x; } };
}

async function pair(net: SimNetwork, clock: VirtualClock, edges = 1) {
  const a = net.listener(), b = net.listener();
  await a.start(); await b.start();
  const inbound: Edge[] = [];
  b.onEdge = (e) => { inbound.push(e); };
  const out: Edge[] = [];
  for (let i = 0; i < edges; i++) out.push(await clock.until(a.createEdge(b.ta), 10, 0.5));
  const control: ControlKind[] = [];
  net.onControl = (k) => { control.push(k); };
  return { a, b, out, inbound, control };
}

function reasons(edges: Edge[]): string[] {
  const r: string[] = [];
  for (const e of edges) e.onClose = (_e, why) => { r.push(why); };
  return r;
}

t.test('a close is a datagram: counted at both ends, and the peer closes one latency later', async (t) => {
  const clock = new VirtualClock();
  const net = new SimNetwork({ clock, random: seededRandom(1), latency: 'lan' });
  const { a, b, out, inbound, control } = await pair(net, clock);
  const why = reasons(inbound);
  const outA = a.stats.packetsOut, inB = b.stats.packetsIn;
  out[0]!.close();
  await clock.advance(0.1);
  t.same(why, [], 'not before the latency');
  await clock.advance(0.2);
  t.same(why, ['closed by peer']);
  t.same(control, ['close']);
  t.equal(a.stats.packetsOut - outA, 1);
  t.equal(b.stats.packetsIn - inB, 1);
  t.equal(a.stats.bytesOut, CONTROL_BYTES, 'the close is the only datagram a sent');
  out[0]!.send(Uint8Array.of(1));
  await clock.advance(1);
  t.same(control, ['close'], 'a closed edge sends nothing, so nothing is refused');
});

t.test('a close dropped at a full receive buffer leaves the edge open until its next packet draws a reset', async (t) => {
  const m = fake();
  const clock = new VirtualClock(0, m.read);
  const net = new SimNetwork({ clock, random: seededRandom(2), latency: 'lan', rcvbuf: () => 3 });
  const { b, out, inbound, control } = await pair(net, clock);
  const why = reasons(out);
  out[0]!.onPacket = () => {};
  for (let i = 0; i < 3; i++) inbound[0]!.send(Uint8Array.of(i)); // fills a's buffer of three...
  inbound[0]!.close(); // ...so the close that follows is dropped
  await clock.advance(10);
  t.same(why, [], 'the close was lost: a still holds its edge');
  t.equal(net.rcvbufs!.dropped, 1);
  const outB = b.stats.packetsOut;
  out[0]!.send(Uint8Array.of(9));
  await clock.advance(10);
  t.same(why, ['reset by peer'], 'b, running, answered the packet with a reset');
  t.same(control, ['close', 'reset']);
  t.equal(b.stats.packetsOut - outB, 1, 'the reset is counted as b\'s datagram');
});

t.test('a crashed listener sends no reset', async (t) => {
  const clock = new VirtualClock();
  const net = new SimNetwork({ clock, random: seededRandom(3), latency: 'lan' });
  const { b, out, control } = await pair(net, clock);
  const why = reasons(out);
  b.crash();
  out[0]!.send(Uint8Array.of(1));
  await clock.advance(10);
  t.same(why, [], 'a learns nothing: its own timeouts must notice');
  t.same(control, []);
});

t.test('a listener sends at most 100 resets a second', async (t) => {
  const m = fake();
  const clock = new VirtualClock(0, m.read);
  let cap = 1;
  const net = new SimNetwork({ clock, random: seededRandom(4), latency: 'lan', rcvbuf: () => cap });
  const { out, inbound, control } = await pair(net, clock, 150);
  const why = reasons(out);
  out[0]!.onPacket = () => { m.work(10); }; // a is busy while b's closes arrive: all dropped
  inbound[0]!.send(Uint8Array.of(0));
  for (const e of inbound) e.close();
  await clock.advance(50);
  t.same(why, [], 'every close was dropped');
  cap = 1000;
  for (const e of out) e.send(Uint8Array.of(1));
  await clock.advance(100);
  t.equal(why.length, 100, 'a hundred resets in the first second');
  t.ok(why.every((w) => w === 'reset by peer'));
  await clock.advance(1000);
  for (const e of out) e.send(Uint8Array.of(2)); // the closed ones send nothing
  await clock.advance(100);
  t.equal(why.length, 150, 'the rest in the next second');
  t.equal(control.filter((k) => k === 'reset').length, 150);
});
