import t from 'tap';
import { Address } from '../src/address/address.js';
import { sameNeighbors, stillServes } from '../src/connection/status-news.js';
import { TransportAddress } from '../src/transport/ta.js';
import { seededRandom } from '../src/util/random.js';

const rnd = seededRandom(7);
const [self, f1, f2, f3, f4, f5, f6] = Array.from({ length: 7 }, () => Address.random(rnd));
const b = (a: Address) => a!.key.slice('brunet:node:'.length);
const relay = (...f: Address[]) => TransportAddress.tunnel(b(self!), f.map(b));
const udp = (port: number) => new TransportAddress('udp', '192.0.2.1', port);

t.test('a copy with the same direct TAs and most of its relay forwarders still serves', async (t) => {
  const told = [udp(1), relay(f1!, f2!, f3!, f4!)];
  t.ok(stillServes(told, [udp(1), relay(f1!, f2!, f3!, f4!)]), 'identical');
  t.ok(stillServes(told, [udp(1), relay(f5!, f6!, f3!, f4!)]), 'new ring neighbours, two of four forwarders kept');
  t.notOk(stillServes(told, [udp(1), relay(f5!, f6!, f1!)]), 'one of four kept');
  t.notOk(stillServes([udp(1), relay(f1!)], [udp(1), relay(f2!)]), 'its only forwarder gone');
});

t.test('any change of the direct TAs, or a relay TA appearing or going, does not', async (t) => {
  const told = [udp(1), relay(f1!, f2!)];
  t.notOk(stillServes(told, [udp(2), relay(f1!, f2!)]), 'another port');
  t.notOk(stillServes(told, [udp(9), udp(1), relay(f1!, f2!)]), 'a NAT mapping learnt');
  t.notOk(stillServes(told, [udp(1)]), 'relay TA gone');
  t.notOk(stillServes([udp(1)], [udp(1), relay(f1!)]), 'relay TA new');
  t.ok(stillServes([udp(1)], [udp(1)]));
  t.notOk(stillServes([], [udp(1)]));
});

t.test('neighbour lists are the same only node by node, TAs included', async (t) => {
  const a = [{ address: f1!, tas: [udp(1)] }, { address: f2!, tas: [udp(2)] }];
  t.ok(sameNeighbors(a, [{ address: f1!, tas: [udp(1)] }, { address: f2!, tas: [udp(2)] }]));
  t.notOk(sameNeighbors(undefined, a), 'never told');
  t.notOk(sameNeighbors(a, [a[1]!, a[0]!]), 'order');
  t.notOk(sameNeighbors(a, [a[0]!]), 'one fewer');
  t.notOk(sameNeighbors(a, [a[0]!, { address: f2!, tas: [udp(3)] }]), 'a neighbour moved');
  t.ok(sameNeighbors([], []));
});
