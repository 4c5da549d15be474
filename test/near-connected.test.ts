// NearOverlord.isConnected (Brunet's IsConnected): a node counts as connected only once its
// nearest neighbour on each side has reported its own neighbours and none of them lies
// between that neighbour and us. A neighbour that linked to us has not reported yet: its
// empty list means "not told", and the node asks for it (statusreq) instead of trusting it.
import t from 'tap';
import { Address, RING } from '../src/address/address.js';
import { Connection } from '../src/connection/connection.js';
import type { LinkManager } from '../src/connection/link-manager.js';
import type { NodeInfo } from '../src/connection/node-info.js';
import { DEFAULT_NEAR_OPTIONS, NearOverlord } from '../src/connection/overlord/near.js';
import type { Connector } from '../src/connection/overlord/overlord.js';
import { ConnectionTable } from '../src/connection/table.js';
import type { Edge } from '../src/transport/edge.js';
import { TransportAddress } from '../src/transport/ta.js';
import type { Clock } from '../src/util/clock.js';
import { silentLogger } from '../src/util/log.js';
import { cryptoRandom } from '../src/util/random.js';

const at = (fraction: number) => Address.fromBigInt((RING * BigInt(Math.round(fraction * 1000))) / 1000n);
const SELF = at(0.5);

function fakeEdge(n: number): Edge {
  return {
    id: `fake/${n}`, kind: 'function', localTA: new TransportAddress('function', 'localhost', 1),
    remoteTA: new TransportAddress('function', 'localhost', 1 + n), inbound: true, closed: false,
    send: () => {}, close: () => {}, onPacket: () => {}, onClose: () => {},
  };
}

function setup() {
  let now = 1_000_000;
  const clock: Clock = { now: () => now, setTimeout: () => ({ cancel() {} }), setInterval: () => ({ cancel() {} }) };
  const table = new ConnectionTable(SELF, () => now);
  const asked: string[] = [];
  const link = {
    requestStatus: (c: Connection) => { asked.push(c.address.key); },
    sendStatus: () => {},
    connect: async () => null,
    close: () => {},
  } as unknown as LinkManager;
  const connector: Connector = { connectTo: async () => [] };
  const near = new NearOverlord(table, link, connector, clock, cryptoRandom, silentLogger, DEFAULT_NEAR_OPTIONS);
  let seq = 0;
  /** A structured connection the peer opened to us: linked, but no report of its neighbours yet. */
  const inbound = (a: Address) => {
    const c = new Connection(a, fakeEdge(++seq), 'structured.near', false, now, { address: a, tas: [] });
    table.add(c);
    return c;
  };
  return { table, near, inbound, asked, advance: (ms: number) => { now += ms; }, now: () => now };
}

const info = (a: Address): NodeInfo => ({ address: a, tas: [] });

t.test('one fresh inbound link is not a place in the ring', async (t) => {
  const { near, inbound } = setup();
  const c = inbound(at(0.52));
  // The only connection is our neighbour on both sides; it has told us nothing yet.
  t.equal(c.peerNeighbors.length, 0);
  t.notOk(near.isConnected(), 'not connected before the neighbour reported');
  // Its report names its other neighbours, which lie between it and us the long way round.
  c.reportNeighbors([info(at(0.6)), info(at(0.3))]);
  t.notOk(near.isConnected(), 'still not: the report shows nodes between us');
  // A two-node ring: the peer reports nobody else.
  c.reportNeighbors([]);
  t.ok(near.isConnected(), 'connected once the report says nobody is between');
});

t.test('both nearest neighbours must have reported, and report nobody between', async (t) => {
  const { near, inbound } = setup();
  const l = inbound(at(0.55)), r = inbound(at(0.45));
  t.notOk(near.isConnected(), 'neither reported');
  l.reportNeighbors([info(at(0.6))]);
  t.notOk(near.isConnected(), 'the right one has not reported');
  r.reportNeighbors([info(at(0.4)), info(at(0.48))]);
  t.notOk(near.isConnected(), 'the right one knows a node between it and us');
  r.reportNeighbors([info(at(0.4)), info(at(0.55))]);
  t.ok(near.isConnected(), 'both reported, nobody between');
});

t.test('a nearest neighbour that has not reported is asked, at most once a second', async (t) => {
  const { near, inbound, asked, advance, now } = setup();
  const l = inbound(at(0.55)), r = inbound(at(0.45));
  inbound(at(0.7)); // not a nearest neighbour: never asked
  r.reportNeighbors([]);
  near.activate(now());
  t.same(asked, [l.address.key], 'only the unreported nearest neighbour');
  advance(500);
  near.activate(now());
  t.equal(asked.length, 1, 'not again within a second');
  advance(600);
  near.activate(now());
  t.equal(asked.length, 2, 'again after a second');
  l.reportNeighbors([info(at(0.7))]);
  advance(5000);
  near.activate(now());
  t.equal(asked.length, 2, 'never once it has reported');
  t.ok(near.isConnected());
});

t.test('a removed connection is not kept by the isConnected memo', async (t) => {
  // In a process of many nodes a kept Connection holds its edge, and through an in-memory edge's
  // twin the departed peer's node: crashed simulated nodes were kept alive that way.
  const v8 = await import('node:v8'), vm = await import('node:vm');
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const { table, near, inbound } = setup();
  const ref = ((): WeakRef<Connection> => {
    const c = inbound(at(0.52));
    c.reportNeighbors([]);
    t.ok(near.isConnected(), 'connected: the memo now names the connection');
    table.remove(c);
    return new WeakRef(c);
  })();
  // Nothing asks again (a stopped node never does): the memo must let go of it by itself.
  // deref() keeps its target alive until the current job ends: collect in a job of its own.
  const turn = () => new Promise((r) => setImmediate(r));
  for (let i = 0; i < 5; i++) { await turn(); gc(); await turn(); if (!ref.deref()) break; }
  t.equal(ref.deref(), undefined, 'the removed connection was collected');
});

t.test('candidates not heard of for CANDIDATE_MS are dropped even where the walk to the nearest does not reach', async (t) => {
  const { near, inbound, advance, now } = setup();
  inbound(at(0.52)); inbound(at(0.48));
  (near as unknown as { link: { connect: () => Promise<null> } }).link.connect = () => new Promise(() => {}); // links stay pending
  const candidates = () => [...(near as unknown as { candidates: Map<string, unknown> }).candidates.keys()];
  const far = [0.6, 0.65, 0.7, 0.75, 0.8, 0.3, 0.35, 0.4].map(at);
  const close = [0.51, 0.515, 0.49, 0.485].map(at);
  near.learn(null, far.map(info));
  near.activate(now());
  t.equal(candidates().length, far.length, 'fresh candidates stay');
  advance(130_000); // past CANDIDATE_MS (120 s) without hearing of them again
  near.learn(null, close.map(info));
  near.activate(now()); // the walk stops at the two nearest per side, all fresh
  t.same(candidates().sort(), close.map((a) => a.key).sort(), 'the stale far candidates are gone, the fresh near ones kept');
});
