// The <Relay> section of NodeConfig, the NAT history (our address as peers see it, port
// prediction) and the interface ignore list of the IP listeners.
import t from 'tap';
import os from 'node:os';
import { parseNodeConfig } from '../src/config/node-config.js';
import { NatHistory, predictPort } from '../src/connection/nat-history.js';
import { TransportAddress } from '../src/transport/ta.js';
import { advertisedHosts } from '../src/transport/ip.js';

const wrap = (inner: string) => `<NodeConfig><BrunetNamespace>x</BrunetNamespace>${inner}</NodeConfig>`;
const udp = (h: string, p: number) => new TransportAddress('udp', h, p);

t.test('Relay config: defaults, values and errors', async (t) => {
  t.same(parseNodeConfig(wrap('')).relay, { enabled: true, maxBytesPerSecond: 10_000_000, forwarders: 4, upgradeInterval: 30 });
  t.same(parseNodeConfig(wrap('<Relay><Enabled>false</Enabled><MaxBytesPerSecond>50000</MaxBytesPerSecond><Forwarders>2</Forwarders><UpgradeInterval>0</UpgradeInterval></Relay>')).relay,
    { enabled: false, maxBytesPerSecond: 50000, forwarders: 2, upgradeInterval: 0 });
  for (const [xml, re] of [
    ['<Relay><Forwarders>9</Forwarders></Relay>', /^Relay\/Forwarders: 9 out of range 1\.\.8/],
    ['<Relay><MaxBytesPerSecond>10</MaxBytesPerSecond></Relay>', /^Relay\/MaxBytesPerSecond: 10 out of range/],
    ['<Relay><Enabled>perhaps</Enabled></Relay>', /^Relay\/Enabled/],
    ['<Relay><Bogus>1</Bogus></Relay>', /Relay.*Bogus/],
  ] as const) t.throws(() => parseNodeConfig(wrap(xml)), re, xml);
});

t.test('NAT history: views by public IP, newest first, local ones left out', async (t) => {
  const h = new NatHistory({ maxAgeMs: 1000, maxAdvertised: 4 });
  const local = [udp('10.0.0.2', 5000)];
  h.record(udp('10.0.0.2', 5000), 0); // a peer on our LAN sees our local TA
  h.record(new TransportAddress('tcp', '10.200.0.4', 40000), 0); // TCP views are ephemeral ports
  t.same(h.advertised(0, local), [], 'nothing beyond the local TA');
  h.record(udp('10.200.0.4', 5000), 10);
  h.record(udp('10.200.0.8', 7000), 20);
  h.record(udp('10.200.0.4', 5000), 30);
  t.same(h.advertised(30, local).map(String), ['brunet.udp://10.200.0.4:5000', 'brunet.udp://10.200.0.8:7000'], 'the most recently confirmed IP first');
  t.same(h.advertised(1025, local).map(String), ['brunet.udp://10.200.0.4:5000'], 'old views expire');
  h.clear();
  t.same(h.advertised(1025, local), []);
});

t.test('NAT history: port prediction for stepping NATs only', async (t) => {
  t.equal(predictPort([5004, 5002, 5000]), 5006, 'constant step of 2');
  t.equal(predictPort([5000, 5000, 5000]), undefined, 'a preserving NAT needs no prediction');
  t.equal(predictPort([40123, 5017, 61000]), undefined, 'random ports are not predicted');
  t.equal(predictPort([5002, 5001]), undefined, 'two views are not a pattern');
  t.equal(predictPort([65535, 65534, 65533]), undefined, 'never past the port range');
  const h = new NatHistory();
  for (const [i, p] of [6000, 6001, 6002].entries()) h.record(udp('10.200.0.9', p), i);
  t.same(h.advertised(3, []).map(String), ['brunet.udp://10.200.0.9:6002', 'brunet.udp://10.200.0.9:6003']);
  const sym = new NatHistory();
  for (const [i, p] of [40123, 5017, 61000].entries()) sym.record(udp('10.200.0.44', p), i);
  sym.record(udp('10.200.0.1', 7000), 5);
  t.same(sym.advertised(10, []).map(String), ['brunet.udp://10.200.0.1:7000'], 'a symmetric NAT\'s random ports are not advertised');
});

t.test('listeners never advertise ignored interfaces', async (t) => {
  const ifs = os.networkInterfaces();
  const withV4 = Object.entries(ifs).filter(([, l]) => (l ?? []).some((a) => a.family === 'IPv4' && !a.internal));
  const all = advertisedHosts({});
  t.ok(all.includes('127.0.0.1'), 'loopback is advertised by default');
  if (withV4.length === 0) { t.pass('no external IPv4 interface here: only loopback checked'); return; }
  const [name, addrs] = withV4[0]!;
  const v4 = addrs!.filter((a) => a.family === 'IPv4').map((a) => a.address);
  t.ok(v4.every((a) => all.includes(a)), `${name}'s addresses are advertised`);
  const without = advertisedHosts({ ignore: [name] });
  t.ok(v4.every((a) => !without.includes(a)), `ignoring ${name} drops its addresses`);
  t.same(advertisedHosts({ devices: [name], ignore: [name] }), [], 'ignore wins over DevicesToBind');
});

t.test('NatReflector: rounds every few seconds while no view is known, then every period', async (t) => {
  const { NatReflector } = await import('../src/connection/nat-reflect.js');
  const { seededRandom } = await import('../src/util/random.js');
  // A manual clock: timers run in time order as `advance` moves time on.
  let now = 0;
  const timers: Array<{ at: number; fn: () => void; live: boolean }> = [];
  const clock = {
    now: () => now,
    setTimeout(fn: () => void, ms: number) { const x = { at: now + ms, fn, live: true }; timers.push(x); return { cancel: () => { x.live = false; } }; },
    setInterval(): never { throw new Error('unused'); },
  };
  const advance = (to: number) => {
    for (;;) {
      const next = timers.filter((x) => x.live && x.at <= to).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      next.live = false;
      now = next.at;
      next.fn();
    }
    now = to;
  };
  const rounds: number[] = [];
  // One linked peer on another LAN; reflect() asks the link layer for a listener, which
  // marks a round (and, answering none, ends the reflect there).
  // Three peers: two whose UDP TA is on the host their edge to us comes from (reachable), one
  // advertising only a private address behind a NAT (its edge comes from the NAT's address).
  const peer = (ta: TransportAddress, from: string) => ({ peerTAs: [ta], edge: { kind: 'tcp', remoteTA: new TransportAddress('tcp', from, 40000) } });
  const table = { all: () => [peer(udp('10.200.0.9', 17000), '10.200.0.9'), peer(udp('10.151.3.2', 17008), '10.150.0.21'), peer(udp('10.200.0.7', 17000), '10.200.0.7')] };
  const asked = new Set<string>();
  const link = { leaving: false, listenerFor: (ta: TransportAddress) => { if (rounds.at(-1) !== now) rounds.push(now); asked.add(ta.host); return undefined; } };
  let view = false;
  const r = new NatReflector(table as never, link as never, () => [udp('10.0.0.2', 17000)], () => view, clock, seededRandom(7), 30_000);
  r.start();
  advance(20_000);
  t.ok(rounds.length >= 3, `without a view: ${rounds.length} rounds in 20 s (${rounds.join(', ')})`);
  t.ok(rounds.slice(1).every((at, i) => at - rounds[i]! <= 6250), 'at most 6.25 s apart');
  view = true;
  advance(26_000);
  const n = rounds.length;
  advance(140_000);
  const gaps = rounds.slice(n).map((at, i) => at - rounds[n + i - 1]!);
  t.ok(gaps.length >= 3 && gaps.every((g) => g >= 22_500 && g <= 37_500), `with a view: every 22.5–37.5 s (${gaps.join(', ')})`);
  t.same([...asked].sort(), ['10.200.0.7', '10.200.0.9'], 'only peers known to be reachable over UDP are asked while there are enough of them');
  r.stop();
  const m = rounds.length;
  advance(400_000);
  t.equal(rounds.length, m, 'no rounds after stop()');
});
