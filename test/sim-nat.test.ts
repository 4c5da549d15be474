// Simulated NATs: a cone NAT lets packets in only from TAs it sent to within the last 60
// virtual s, a symmetric one only on edges it opened; private TAs cannot be dialled; in a small
// world two NATed nodes are connected only through relay (tunnel) edges, and no NATed node
// ever receives a packet from a TA it had not sent to (checked against every send on the wire).
import t from 'tap';
import { Mode } from '../src/routing/ah-wire.js';
import type { Edge } from '../src/transport/edge.js';
import { NAT_MAPPING_MS, type NatType } from '../src/transport/sim-nat.js';
import { SimNetwork } from '../src/transport/sim.js';
import { seededRandom } from '../src/util/random.js';
import { VirtualClock } from '../src/util/virtual-clock.js';
import { SimWorld } from '../bench/sim/world.js';

async function pair(type: NatType) {
  const clock = new VirtualClock();
  const net = new SimNetwork({ clock, random: seededRandom(1), latency: 'lan' });
  const pub = net.listener(), nat = net.natListener(type);
  await pub.start(); await nat.start();
  const natGot: string[] = [];
  let pubEdge: Edge | undefined;
  pub.onEdge = (e) => { pubEdge = e; };
  nat.onEdge = (e) => { e.onPacket = (p) => natGot.push(`in:${p[0]}`); };
  return { clock, net, pub, nat, natGot, pubEdge: () => pubEdge };
}

t.test('the NATed node advertises a private TA nobody can dial; peers see its public TA', async (t) => {
  const { clock, pub, nat } = await pair('cone');
  t.not(nat.localTAs()[0]!.key, nat.publicTA.key);
  t.match(nat.localTAs()[0]!.host, /^10\.\d+\.\d+\.2$/);
  await t.rejects(clock.until(pub.createEdge(nat.localTAs()[0]!), 10), /connection refused/);
  let seen: Edge | undefined;
  pub.onEdge = (e) => { seen = e; };
  const out = await clock.until(nat.createEdge(pub.ta), 10);
  t.equal(seen!.remoteTA.key, nat.publicTA.key, 'the peer sees the public TA');
  t.equal(out.localTA.key, nat.localTAs()[0]!.key, 'the node sees its private one');
});

t.test('cone: in only from a TA we sent to within 60 s; symmetric: never on an edge the peer opened', async (t) => {
  for (const type of ['cone', 'symmetric'] as const) {
    const { clock, pub, nat, natGot } = await pair(type);
    // The public node opens an edge to the NAT's public TA first: dropped.
    const toNat = await clock.until(pub.createEdge(nat.publicTA), 10);
    toNat.send(Uint8Array.of(1));
    await clock.advance(10);
    t.same(natGot, [], `${type}: unsolicited packet dropped`);
    // The NATed node sends to the public node (its own edge): the mapping opens.
    const out = await clock.until(nat.createEdge(pub.ta), 10);
    const outGot: number[] = [];
    out.onPacket = (p) => outGot.push(p[0]!);
    out.send(Uint8Array.of(9));
    await clock.advance(10);
    pub.onEdge = () => {};
    toNat.send(Uint8Array.of(2));
    await clock.advance(10);
    t.same(natGot, type === 'cone' ? ['in:2'] : [], `${type}: the peer's own edge ${type === 'cone' ? 'now gets in' : 'still does not'}`);
    // Replies on the NATed node's edge get in, until its mapping has been idle for 60 s.
    const replyOn = [...(pub as unknown as { edges: Set<Edge> }).edges].find((e) => e.inbound)!;
    replyOn.send(Uint8Array.of(3));
    await clock.advance(10);
    t.same(outGot, [3], `${type}: a reply on the node's own edge gets in`);
    await clock.advance(NAT_MAPPING_MS + 1000);
    replyOn.send(Uint8Array.of(4));
    toNat.send(Uint8Array.of(5));
    await clock.advance(10);
    t.same(outGot, [3], `${type}: after 60 idle s the mapping is gone`);
    t.same(natGot, type === 'cone' ? ['in:2'] : []);
    t.ok(nat.stats.dropped >= 3, `${type}: ${nat.stats.dropped} packets dropped`);
  }
});

t.test('a small world with symmetric NATs: NATed pairs only over relays, no packet from an unsent-to TA', async (t) => {
  const w = new SimWorld({ nodes: 16, seed: 4, security: 'null', nat: 0.4, natType: 'symmetric' });
  const natted = w.nodes.filter((_, i) => w.nats[i]);
  t.ok(natted.length >= 3 && natted.length <= 10, `${natted.length} of 16 behind NATs`);
  t.equal(w.nats[0], undefined, 'never the bootstrap');
  // Every send on the wire, by sender's public TA: destination → when last sent.
  const sent = new Map<string, Map<string, number>>();
  w.net.intercept = (_p, from) => {
    let m = sent.get(from.localTA.key);
    if (!m) sent.set(from.localTA.key, m = new Map());
    m.set(from.remoteTA.key, w.clock.now());
    return 'pass';
  };
  const violations: string[] = [];
  let observed = 0;
  for (const nat of w.nats) {
    if (!nat) continue;
    nat.observe = (from, at) => {
      observed++;
      const last = sent.get(nat.publicTA.key)?.get(from.key);
      if (last === undefined || at - last > NAT_MAPPING_MS) violations.push(`${nat.publicTA} got a packet from ${from} at ${at}`);
    };
  }
  w.scheduleJoins();
  for (let i = 0; i < 600 && !w.consistent(); i++) await w.clock.advance(500);
  t.ok(w.consistent(), `consistent after ${w.clock.now() / 1000} virtual s`);
  await w.clock.advance(120_000); // past the 60 s mappings, with keepalives, shortcuts and relay upgrades running
  t.ok(w.consistent(), 'still consistent two virtual minutes later');
  t.ok(observed > 1000, `${observed} packets let through the NATs`);
  t.same(violations.slice(0, 5), [], 'no NATed node received a packet from a TA it had not sent to in the last 60 s');
  let natPairs = 0;
  for (const a of natted) {
    for (const c of a.table.all()) {
      if (!natted.some((b) => b.address.equals(c.address))) continue;
      natPairs++;
      t.equal(c.edge.kind, 'tunnel', `NATed ${a.address.key.slice(12, 18)} ↔ NATed ${c.address.key.slice(12, 18)} over a relay`);
    }
  }
  t.ok(natPairs > 0, `${natPairs} connections between NATed nodes, all relayed`);
  const [a, b] = [natted[0]!, natted[natted.length - 1]!];
  const hops = await w.clock.until(a.rpc.call({ address: b.address, mode: Mode.Exact }, 'bench.Hops', [], { timeoutMs: 5000 }), 10_000);
  t.type(hops, 'number', 'an RPC from one NATed node to another is answered');
  t.ok(w.relayed().relayed > 0);
});
