// Traffic-triggered liveness (src/connection/liveness.ts) in virtual time, with the shipped
// keepalive (ping after 10 s of silence, close after 30 s): a node that crashes on a route is
// probed as soon as traffic goes to it, routed around within about a second and dropped within
// a few; one lost probe only makes a connection suspect, and it stays.
import t, { type Test } from 'tap';
import type { Connection } from '../src/connection/connection.js';
import type { Node, NodeOptions } from '../src/node/node.js';
import { Mode } from '../src/routing/ah-wire.js';
import { SimWorld } from '../bench/sim/world.js';
import { consistency } from './helpers/ring.js';
import { VirtualLab } from './helpers/virtual.js';

/** The shipped link timers, so that only the liveness probes can notice a crash within seconds. */
const SHIPPED_LINK = { link: { pingAfterMs: 10_000, timeoutMs: 30_000, unlinkedEdgeMs: 30_000 } };

/** The first hop `a` routes a packet for `b` to (the router's greedy choice), if not b itself. */
function nextHop(a: Node, b: Node): Connection | undefined {
  if (a.table.get(b.address)) return undefined;
  const { left, right } = a.table.bracket(b.address);
  let best: Connection | undefined;
  let d = a.address.absDistanceTo(b.address);
  for (const c of [left, right]) if (c && c.address.absDistanceTo(b.address) < d) { best = c; d = c.address.absDistanceTo(b.address); }
  return best;
}

const ping = (a: Node, b: Node, timeoutMs: number) =>
  a.rpc.call({ address: b.address, mode: Mode.Exact }, 'sys:link.Ping', ['x'], { timeoutMs }).then(() => true, () => false);

async function ringWithRoute(t: Test, lab: VirtualLab, n: number, opts: Partial<NodeOptions> = {}): Promise<{ nodes: Node[]; a: Node; b: Node; x: Node } | undefined> {
  const nodes = await lab.startRing(n, { ...SHIPPED_LINK, ...opts });
  t.ok(await lab.waitFor(() => consistency(nodes) === 1, 30_000), 'ring formed');
  await lab.sleep(5000); // shortcuts and trimming settle
  for (const a of nodes) for (const b of nodes) {
    const hop = a !== b ? nextHop(a, b) : undefined;
    const x = hop && nodes.find((m) => m.address.equals(hop.address));
    if (x && x !== b) return { nodes, a, b, x };
  }
  t.fail('no pair of nodes routes through a third');
  return undefined;
}

t.test('a node that crashes on a route: traffic goes around it within seconds, its peer drops it', async (t) => {
  const lab = new VirtualLab({ seed: 161 });
  t.teardown(() => lab.stop());
  const r = await ringWithRoute(t, lab, 24);
  if (!r) return;
  const { a, b, x } = r;
  t.ok(await ping(a, b, 5000), 'a reaches b through x before the crash');
  const toX = a.table.get(x.address)!;
  lab.crash(x);
  const crashedAt = lab.now();
  t.ok(await ping(a, b, 5000), 'the first call after the crash is answered within its 5 s');
  const answeredIn = lab.now() - crashedAt;
  t.ok(answeredIn <= 3500, `answered ${answeredIn} ms after the crash (the late retry goes around x)`);
  t.ok(toX.suspect || a.table.get(x.address) === undefined, 'x is suspect or already dropped');
  t.ok(await lab.waitFor(() => a.table.get(x.address) === undefined, 8000), 'a drops x within 8 s (the keepalive would take 30 s)');
  const droppedIn = lab.now() - crashedAt;
  t.ok(a.link.stats.unanswered >= 1, `dropped by the probes (${a.link.stats.unanswered}), not the keepalive (${a.link.stats.timeouts})`);
  t.ok(droppedIn < 10_000, `x dropped ${droppedIn} ms after the crash`);
  // Every later call is answered at once (no resend needed).
  let fast = 0;
  for (let i = 0; i < 10; i++) {
    const t0 = lab.now();
    if (await ping(a, b, 5000) && lab.now() - t0 < 100) fast++;
  }
  t.equal(fast, 10, 'after the drop every call is answered without a resend');
});

t.test('without the probes the same crash costs the calls of the keepalive timeout', async (t) => {
  const lab = new VirtualLab({ seed: 161 });
  t.teardown(() => lab.stop());
  const r = await ringWithRoute(t, lab, 24, { link: { ...SHIPPED_LINK.link, probeMisses: 0 } });
  if (!r) return;
  const { a, b, x } = r;
  t.ok(await ping(a, b, 5000), 'a reaches b through x before the crash');
  lab.crash(x);
  t.notOk(await ping(a, b, 5000), 'the first call after the crash times out (this is what the probes fix)');
  t.ok(a.table.get(x.address), 'and a still holds x');
  t.equal(a.link.liveness.stats.probes, 0, 'no probe was sent');
});

t.test('an idle peer that crashes is dropped by the keepalive\'s probes within 17 s, not after 30', async (t) => {
  // SimWorld.crash is a crash as peers see it: no packet and no edge close reaches them.
  const w = new SimWorld({ nodes: 8, seed: 164, security: 'none' });
  w.scheduleJoins();
  for (let i = 0; i < 600 && !w.consistent(); i++) await w.clock.advance(100);
  t.ok(w.consistent(), 'ring formed');
  await w.clock.advance(5000);
  const a = w.nodes[0]!;
  const near = a.table.neighborsOf(a.address, 1).left[0]!; // a ring neighbour: no overlord trims it
  const x = w.nodes.find((n) => n.address.equals(near.address))!;
  w.crash(x);
  const crashedAt = w.clock.now();
  for (let i = 0; i < 250 && a.table.get(x.address); i++) await w.clock.advance(100);
  const took = w.clock.now() - crashedAt;
  t.notOk(a.table.get(x.address), 'a drops x');
  t.ok(took <= 17_000, `dropped ${took} ms after the crash (pinged after 10 s of silence, then 0.5 + 1 + 2 s of probes)`);
  t.equal(a.link.stats.timeouts, 0, 'not by the 30 s timeout');
  t.ok(a.link.stats.unanswered >= 1, 'by the probes');
  await Promise.all(w.live.map((n) => n.stop()));
});

t.test('one lost probe makes a connection suspect; it is answered next time and the connection stays', async (t) => {
  const lab = new VirtualLab({ seed: 162 });
  t.teardown(() => lab.stop());
  const [a, b] = await lab.startRing(2, SHIPPED_LINK);
  t.ok(await lab.waitFor(() => a!.table.get(b!.address)?.structured === true && b!.table.get(a!.address) !== undefined, 10_000), 'linked');
  await lab.sleep(3000); // the link goes quiet: the next send is probed at once
  const c = a!.table.get(b!.address)!;
  const [ta, tb] = [a!.listeners[0]!.localTAs()[0]!, b!.listeners[0]!.localTAs()[0]!];
  const probes0 = a!.link.liveness.stats.probes;
  lab.net.block(ta, tb);
  const call = a!.rpc.call({ via: c }, 'sys:link.Ping', ['y'], { timeoutMs: 5000 }).then(() => true, () => false);
  t.ok(await lab.waitFor(() => a!.link.liveness.stats.probes > probes0, 2000, 5), 'the send on a quiet link is probed');
  lab.net.unblock(ta, tb); // that probe was lost; the next one gets through
  // Suspect from the miss until the next probe's answer (well under a millisecond on the LAN model).
  t.ok(await lab.waitFor(() => a!.link.liveness.stats.suspected === 1, 2000, 5), 'one missed probe: suspect');
  t.ok(await lab.waitFor(() => !c.suspect && a!.link.liveness.stats.cleared === 1, 3000, 5), 'the next probe is answered: no longer suspect');
  t.ok(await call, 'the call is answered');
  await lab.sleep(5000);
  t.equal(a!.table.get(b!.address), c, 'the same connection is still in the table');
  t.equal(a!.link.stats.unanswered, 0, 'nothing dropped by the probes');
  t.equal(a!.link.liveness.stats.suspected, 1, 'suspected once');
  t.equal(a!.link.liveness.stats.cleared, 1, 'and cleared once');
});

t.test('under 1 % loss no connection of a busy ring is dropped by the probes', async (t) => {
  const lab = new VirtualLab({ seed: 163, loss: 0.01 });
  t.teardown(() => lab.stop());
  const nodes = await lab.startRing(16, SHIPPED_LINK);
  t.ok(await lab.waitFor(() => consistency(nodes) === 1, 30_000), 'ring formed under loss');
  await lab.sleep(5000);
  const before = nodes.reduce((s, n) => s + n.link.liveness.stats.probes, 0);
  // 60 virtual s of sparse routed traffic: every send on a quiet link is probed.
  let answered = 0, calls = 0;
  for (let i = 0; i < 120; i++) {
    const a = nodes[(i * 7) % 16]!, b = nodes[(i * 5 + 3) % 16]!;
    if (a === b) continue;
    calls++;
    void ping(a, b, 5000).then((ok) => { if (ok) answered++; });
    await lab.sleep(500);
  }
  await lab.sleep(6000);
  const probes = nodes.reduce((s, n) => s + n.link.liveness.stats.probes, 0) - before;
  t.ok(probes > 50, `${probes} probes sent`);
  t.equal(nodes.reduce((s, n) => s + n.link.stats.unanswered, 0), 0, 'no connection dropped by the probes');
  t.equal(answered, calls, `${answered} of ${calls} calls answered`);
});
