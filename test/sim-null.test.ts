// The simulator's null security layer: the same packets as the secure edge (count and size),
// the peer's claimed address, RPCs between real nodes, and no shipped code that can select it.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { Address } from '../src/address/address.js';
import { groupKey, Identity, NullSecureEdgeListener, SecureEdgeListener, type PeerInfo } from '../src/edge/index.js';
import type { Edge, EdgeListener } from '../src/transport/edge.js';
import { SimNetwork } from '../src/transport/sim.js';
import { seededRandom } from '../src/util/random.js';
import { VirtualClock } from '../src/util/virtual-clock.js';
import { SimWorld } from '../bench/sim/world.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** One edge a → b, three packets each way; the sizes of every packet on the wire, in order. */
async function exchange(kind: 'on' | 'null'): Promise<{ sizes: number[]; peers: string[]; got: string[]; addresses: string[]; key: { len: number; prefix: string; address: string; tail: number[] } }> {
  const clock = new VirtualClock();
  const net = new SimNetwork({ clock, random: seededRandom(3), latency: 'lan' });
  const sizes: number[] = [];
  net.intercept = (p) => { sizes.push(p.length); return 'pass'; };
  const key = kind === 'on' ? groupKey('null-test', 'ns') : undefined;
  const make = (seed: number): { l: EdgeListener; address: Address } => {
    const random = seededRandom(seed);
    if (key) {
      const identity = Identity.fromPrivateKeys(random.bytes(32), random.bytes(32));
      return { l: new SecureEdgeListener(net.listener(), { identity, groupKey: key, namespace: 'ns', clock, random }), address: identity.address };
    }
    const address = Address.random(random);
    return { l: new NullSecureEdgeListener(net.listener(), { address, clock }), address };
  };
  const a = make(11), b = make(12);
  await a.l.start(); await b.l.start();
  const got: string[] = [];
  let inbound: Edge | undefined;
  b.l.onEdge = (e) => { inbound = e; e.onPacket = (p) => { got.push(`b:${Buffer.from(p).toString()}`); e.send(p.subarray(0, 2)); }; };
  const e = await clock.until(a.l.createEdge(b.l.localTAs()[0]!), 10_000);
  e.onPacket = (p) => got.push(`a:${Buffer.from(p).toString()}`);
  for (const m of ['hello', 'overlay', 'x'.repeat(300)]) e.send(Buffer.from(m));
  await clock.advance(100);
  const key0 = (e.peer as PeerInfo).publicKey;
  return { sizes, peers: [e.peer!.address.key, inbound!.peer!.address.key], got, addresses: [a.address.key, b.address.key], key: { len: key0.length, prefix: Buffer.from(key0.subarray(0, 20)).toString('hex'), address: Buffer.from(b.address.bytes).toString('hex'), tail: [...key0.subarray(20)] } };
}

t.test('same handshake and data packets as the secure layer: count and every size', async (t) => {
  const sec = await exchange('on'), nul = await exchange('null');
  // HELLO, RETRY, HELLO+cookie, REPLY, FINISH, CONFIRM, then 3 DATA each way.
  t.same(sec.sizes, [51, 18, 67, 197, 165, 26, 31, 33, 326, 28, 28, 28]);
  t.same(nul.sizes, sec.sizes, 'the null layer: the same packets, of the same sizes, in the same order');
  t.same(nul.got, sec.got, 'the same plaintext delivered both ways');
  t.same(nul.peers, [nul.addresses[1], nul.addresses[0]], 'each side knows the other by the address it claimed');
  t.same(sec.peers, [sec.addresses[1], sec.addresses[0]]);
  t.same(nul.key, { len: 32, prefix: nul.key.address, address: nul.key.address, tail: new Array(12).fill(0) }, 'the null peer\'s "public key": its address and 12 zero bytes');
});

t.test('a peer that never answers: createEdge fails after the handshake timeout, after the same retransmits', async (t) => {
  const clock = new VirtualClock();
  const net = new SimNetwork({ clock, random: seededRandom(4), latency: 'lan' });
  const mute = net.listener();
  await mute.start();
  mute.onEdge = (e) => { e.onPacket = () => {}; };
  const l = new NullSecureEdgeListener(net.listener(), { address: Address.random(seededRandom(5)), clock });
  await l.start();
  const p = l.createEdge(mute.ta);
  const r = p.then(() => 'established', (e: Error) => e.message);
  await clock.advance(5000);
  t.match(await r, /timed out/);
  t.equal(l.stats.retransmits, 4, 'HELLO resent at 0.25, 0.75, 1.75 and 3.75 s, as the secure edge does');
  t.equal(l.wrappedEdges, 0, 'nothing left behind');
});

t.test('two real nodes: RPCs through the null layer; packets and bytes within 3 % of the secure layer', async (t) => {
  const run = async (security: 'on' | 'null') => {
    const w = new SimWorld({ nodes: 2, seed: 9, security });
    w.scheduleJoins();
    const [a, b] = w.nodes as [typeof w.nodes[0], typeof w.nodes[0]];
    const linked = () => w.joined === 2 && a.table.get(b.address) !== undefined && b.table.get(a.address) !== undefined;
    for (let i = 0; i < 300 && !linked(); i++) await w.clock.advance(100);
    t.ok(linked(), `${security}: the two nodes are connected`);
    const conn = a.table.get(b.address);
    t.equal((conn?.edge as { peer?: { address: Address } } | undefined)?.peer?.address.key, b.address.key, `${security}: the edge names the peer`);
    const { hops, failed } = await w.hops(200, 10);
    t.equal(failed, 0, `${security}: every RPC answered`);
    t.equal(hops.length, 200);
    await w.clock.run(60_000);
    return w.traffic();
  };
  const on = await run('on'), nul = await run('null');
  const close = (x: number, y: number) => Math.abs(x - y) / y <= 0.03;
  t.ok(close(nul.packets, on.packets), `packets: null ${nul.packets}, secure ${on.packets}`);
  t.ok(close(nul.bytes, on.bytes), `bytes: null ${nul.bytes}, secure ${on.bytes}`);
});

t.test('no shipped code can select the null layer: only the edge index re-exports it', async (t) => {
  const hits: string[] = [];
  const walk = (d: string): void => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts') && /NullSecureEdge|null-listener/.test(readFileSync(p, 'utf8'))) hits.push(relative(ROOT, p));
    }
  };
  walk(join(ROOT, 'src'));
  t.same(hits.sort(), ['src/edge/index.ts', 'src/edge/null-listener.ts']);
});
