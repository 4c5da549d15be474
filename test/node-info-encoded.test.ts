// encodeNodeInfoOnce: a NodeInfo's encoding made once per (address, TA list) and reused in
// neighbour lists; the bytes on the wire are exactly encodeNodeInfo's.
import t from 'tap';
import fc from 'fast-check';
import { Address } from '../src/address/address.js';
import { decodeLink, encodeLink } from '../src/connection/link-wire.js';
import { decodeNodeInfo, encodeNodeInfo, encodeNodeInfoOnce, sharedNodeInfo, type NodeInfo } from '../src/connection/node-info.js';
import { TransportAddress } from '../src/transport/ta.js';
import { seededRandom } from '../src/util/random.js';
import { encodeValue } from '../src/wire/value.js';

const rnd = seededRandom(7);
const info = (port: number, n = 2): { address: Address; tas: TransportAddress[] } => ({
  address: Address.random(rnd),
  tas: Array.from({ length: n }, (_, i) => TransportAddress.parse(`brunet.udp://10.0.0.${i + 1}:${port}`)),
});

t.test('the cached encoding is the plain one, byte for byte, and is reused', async (t) => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 0, max: 12 }), (port, n) => {
    const x = info(port, n);
    const once = encodeNodeInfoOnce(x);
    return Buffer.from(once.bytes).equals(Buffer.from(encodeValue(encodeNodeInfo(x)))) && encodeNodeInfoOnce(x) === once;
  }));
});

t.test('a TA list changed in place, or another address with the same list, is encoded afresh', async (t) => {
  const x = info(4000);
  const first = encodeNodeInfoOnce(x);
  x.tas.push(TransportAddress.parse('brunet.udp://10.9.9.9:9'));
  const second = encodeNodeInfoOnce(x);
  t.not(second, first);
  t.same(second.bytes, encodeValue(encodeNodeInfo(x)));
  x.tas[0] = TransportAddress.parse('brunet.udp://10.8.8.8:8');
  t.same(encodeNodeInfoOnce(x).bytes, encodeValue(encodeNodeInfo(x)), 'same length, another item');
  const y = { address: Address.random(rnd), tas: x.tas };
  t.same(encodeNodeInfoOnce(y).bytes, encodeValue(encodeNodeInfo(y)), 'same list, other address');
});

t.test('link messages with cached neighbour infos decode to the same neighbours', async (t) => {
  const nb = [info(1), info(2, 3), info(3, 0)];
  for (const m of [
    { t: 'status' as const, neighbors: nb },
    { t: 'status' as const, neighbors: nb, tas: nb[1]!.tas },
    { t: 'close' as const, reason: 'x', neighbors: nb },
    { t: 'reply' as const, id: 5, code: 0, local: nb[0]!, neighbors: nb },
  ]) {
    for (let round = 0; round < 2; round++) { // the second round uses the cached encodings
      const d = decodeLink(encodeLink(m)) as { neighbors: NodeInfo[] };
      t.same(d.neighbors.map((n) => [n.address.key, n.tas.map((ta) => ta.key)]), nb.map((n) => [n.address.key, n.tas.map((ta) => ta.key)]), `${m.t}, round ${round}`);
    }
  }
});

t.test('a peer decoded again is the same frozen NodeInfo while its TAs are one it had', async (t) => {
  const x = info(5000, 3);
  const a = decodeNodeInfo(encodeNodeInfo(x)), b = decodeNodeInfo(encodeNodeInfo(x));
  t.equal(b, a, 'one shared object for the same address and TAs');
  t.ok(Object.isFrozen(a) && Object.isFrozen(a.tas), 'shared, so frozen');
  t.throws(() => { (a.tas as TransportAddress[]).push(x.tas[0]!); }, TypeError, 'a shared list cannot be changed in place');
  const moved = decodeNodeInfo(encodeNodeInfo({ address: x.address, tas: x.tas.slice(1) }));
  t.not(moved, a, 'other TAs: a new object');
  t.same(moved.tas.map((ta) => ta.key), x.tas.slice(1).map((ta) => ta.key));
  t.equal(decodeNodeInfo(encodeNodeInfo({ address: x.address, tas: x.tas.slice(1) })), moved, 'and that one is shared from then on');
  t.same(a.tas.map((ta) => ta.key), x.tas.map((ta) => ta.key), 'the earlier object is unchanged');
  t.equal(decodeNodeInfo(encodeNodeInfo(x)), a, 'and still shared: an address keeps a few TA lists');
  t.equal(sharedNodeInfo(a.address, x.tas), a, 'a connection\'s NodeInfo is the same object');
  const other = decodeNodeInfo(encodeNodeInfo({ address: Address.random(rnd), tas: x.tas }));
  t.not(other, a, 'another address with the same TAs: another object');
});

t.test('a node hands out one NodeInfo while its TAs stay the same, a new one when they change', async (t) => {
  const { Node } = await import('../src/node/node.js');
  const { MemoryNetwork } = await import('../src/transport/memory.js');
  const { VirtualClock } = await import('../src/util/virtual-clock.js');
  const clock = new VirtualClock();
  const l = new MemoryNetwork().listener();
  const node = new Node({ namespace: 'info-test', listeners: [l], remoteTAs: [], clock, random: seededRandom(3), tunnel: false });
  await node.start();
  t.teardown(() => node.stop());
  const a = node.info(), b = node.info();
  t.equal(a, b, 'the same object: connections told our TAs share one list, and its encoding is cached');
  t.ok(a.tas.length > 0);
  // A NAT view reported by peers adds an advertised TA: the list changes, so does the NodeInfo.
  const seen = TransportAddress.parse('brunet.udp://203.0.113.9:4000');
  (node as unknown as { nat: { advertised(now: number, local: TransportAddress[]): TransportAddress[] } }).nat.advertised = () => [seen];
  const c = node.info();
  t.not(c, a, 'a new NodeInfo once the TAs differ');
  t.equal(c.tas[0]!.key, seen.key);
  t.equal(node.info(), c);
});
