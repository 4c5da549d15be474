// Switch mode, a member joining just after another's member refresh (in memory, no root): the
// earlier member's list is empty until its next periodic refresh (every 5 s), and its floods
// reached nobody meanwhile: the first ARP requests of `npm run demo:switch` were lost. While
// no member is known, a flood now waits for a re-read of a list older than 1 s.
import t from 'tap';
import type { Clock } from '../src/util/clock.js';
import { buildArpRequest, decodeArp, parseIp, parseMac } from '../src/vpn/frames.js';
import { SwitchNode } from '../src/vpn/switch/switch-node.js';
import { startVpnRing } from './helpers/dht.js';
import { FakeTap } from './helpers/fake-tap.js';

const ON_DEMAND = { enabled: true, threshold: 128, idleTimeout: 240 };
const H1 = parseMac('02:00:00:00:01:01');

t.test('a flood reaches a member that joined after the last member refresh', async (t) => {
  const { lab, nodes, dhts, vpns } = await startVpnRing(t, 6, 'swjoin');
  const skew = { ms: 0 };
  const clock: Clock = { now: () => lab.now() + skew.ms, setTimeout: (f, ms) => lab.clock.setTimeout(f, ms), setInterval: (f, ms) => lab.clock.setInterval(f, ms) };
  const member = async (i: number, tap: FakeTap) => {
    const n = nodes[i]!;
    const node = { address: n.address, table: n.table, router: n.router, rpc: n.rpc, link: n.link, connector: n.connector, clock, log: n.log, listeners: n.listeners };
    const s = new SwitchNode({ node, dht: dhts[i]!.dht, registrations: dhts[i]!.registrations, device: tap, namespace: 'swjoin', onDemand: ON_DEMAND });
    vpns.push(s);
    await s.start();
    return s;
  };
  const [t1, t2] = [new FakeTap(0xb1), new FakeTap(0xb2)];
  const S1 = await member(1, t1);
  const S2 = await member(4, t2);
  t.equal(S1.members.length, 0, 'S1 refreshed before S2 joined: S2 is not in its list');
  t.equal(S2.members.length, 1, 'S2 found S1');
  const arp = (target: string) => t1.inject(buildArpRequest(H1, parseIp('10.0.3.11'), parseIp(target)));

  // S1 is alone, its list more than 1 s old (its periodic re-read is still seconds away).
  skew.ms += 1500;
  arp('10.0.3.21');
  t.ok(await lab.waitFor(() => t2.written.length === 1, 3000), 'the first ARP request reached S2');
  t.equal(t2.written[0] && decodeArp(t2.written[0]).targetIp, parseIp('10.0.3.21'), 'unchanged');
  t.equal(S1.members.length, 1, 'S1 re-read its list for the flood');
  t.equal(S1.stats.flooded, 1, 'one flood');

  // With a member known, a flood goes at once, without another read.
  const refreshes = S1.memberList.stats.refreshes;
  skew.ms += 1500;
  arp('10.0.3.22');
  t.ok(await lab.waitFor(() => t2.written.length === 2, 3000), 'the next one too');
  t.equal(S1.memberList.stats.refreshes, refreshes, 'with no further read of the list');
});
