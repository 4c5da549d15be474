// Security audit, NAT views: what one peer reports of our public address must not decide
// what we advertise (issue 13: nothing from a peer changes where traffic goes unverified).
import t from 'tap';
import { NatHistory } from '../src/connection/nat-history.js';
import { TransportAddress } from '../src/transport/ta.js';

const udp = (h: string, p: number) => new TransportAddress('udp', h, p);
const local = [udp('10.0.0.2', 5000)];
const NAT = '203.0.113.7';

t.test('a lone liar cannot displace a view that two honest peers confirm', async (t) => {
  const h = new NatHistory();
  h.record(udp(NAT, 40000), 0, 'honest-1');
  h.record(udp(NAT, 40000), 1, 'honest-2');
  // Newest report, same IP, another port: before the fix it was advertised first, and the two
  // ports made our cone NAT look symmetric (nothing advertised at all).
  h.record(udp(NAT, 41234), 2, 'liar');
  t.same(h.advertised(3, local).map(String), [`brunet.udp://${NAT}:40000`], 'only the confirmed mapping');
  // Another IP from the liar, refreshed often: it never outranks the confirmed IP.
  for (let i = 0; i < 10; i++) h.record(udp('198.51.100.9', 7000), 10 + i, 'liar');
  t.same(h.advertised(30, local).map(String)[0], `brunet.udp://${NAT}:40000`, 'the confirmed IP stays first');
  t.equal(h.list(30).length, 2, 'the liar holds one view at a time (its first one is gone)');
});

t.test('one peer cannot flood the history or fake a port pattern', async (t) => {
  const h = new NatHistory();
  h.record(udp(NAT, 40000), 0, 'honest-1');
  h.record(udp(NAT, 40000), 1, 'honest-2');
  // 100 views from one peer used to evict every genuine one (the history keeps 64).
  for (let i = 0; i < 100; i++) h.record(udp(`192.0.2.${i + 1}`, 6000 + i), 2 + i, 'liar');
  t.equal(h.list(200).length, 2, 'one view per reporter');
  t.same(h.advertised(200, local).map(String)[0], `brunet.udp://${NAT}:40000`, 'the genuine view survives');
  // A stepping pattern (6000, 6001, 6002) reported by one peer predicted a port before.
  const p = new NatHistory();
  for (const [i, port] of [6000, 6001, 6002].entries()) p.record(udp(NAT, port), i, 'liar');
  t.same(p.advertised(5, local).map(String), [`brunet.udp://${NAT}:6002`], 'no prediction from a single reporter');
  // Three peers that each see the next port are a stepping NAT.
  const s = new NatHistory();
  for (const [i, port] of [6000, 6001, 6002].entries()) s.record(udp(NAT, port), i, `peer-${i}`);
  t.same(s.advertised(5, local).map(String), [`brunet.udp://${NAT}:6002`, `brunet.udp://${NAT}:6003`], 'three reporters: predicted');
});

t.test('genuine cases still work: symmetric NAT, one reporter, moving peers, expiry', async (t) => {
  const sym = new NatHistory();
  for (const [i, port] of [40123, 5017, 61000].entries()) sym.record(udp(NAT, port), i, `peer-${i}`);
  t.same(sym.advertised(5, local), [], 'each peer sees another port: symmetric, not advertised');
  const one = new NatHistory();
  one.record(udp(NAT, 40000), 0, 'bootstrap');
  t.same(one.advertised(1, local).map(String), [`brunet.udp://${NAT}:40000`], 'a single honest view is advertised');
  // The NAT remapped us: as peers report the new port, the old one loses its voices.
  one.record(udp(NAT, 40000), 2, 'peer-2');
  one.record(udp(NAT, 40999), 3, 'bootstrap');
  one.record(udp(NAT, 40999), 4, 'peer-2');
  t.same(one.advertised(5, local).map(String), [`brunet.udp://${NAT}:40999`], 'the new mapping replaces the old');
  const old = new NatHistory({ maxAgeMs: 1000, maxAdvertised: 4 });
  old.record(udp(NAT, 40000), 0, 'a');
  old.record(udp(NAT, 40000), 0, 'b');
  t.same(old.advertised(2000, local), [], 'old views expire');
  old.record(udp(NAT, 41000), 2001, 'a');
  t.same(old.advertised(2002, local).map(String), [`brunet.udp://${NAT}:41000`], 'a reporter of an expired view can report again');
});
