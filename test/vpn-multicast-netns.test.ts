// Router mode's broadcast and multicast (IpopConfig/EnableMulticast), end to end in network
// namespaces (root): members A, B and C have it on, D has it off. A UDP broadcast to the
// subnet's broadcast address and an mDNS datagram (224.0.0.251:5353, received by sockets that
// joined the group on their TAP) from A reach B and C exactly once each, and not D; what D
// sends reaches nobody. D counts both kinds of drop (local_state.multicast.dropped).
// No multicast route is needed, and groupvpn adds none: the mDNS sender picks the TAP with
// IP_MULTICAST_IF, as mDNS responders do per interface (avahi: IP_PKTINFO / ip_mreqn with
// the interface index). A 224.0.0.0/4 route on the TAP would pull the multicast of programs
// that pick no interface off the host's LAN.
import t, { type Test } from 'tap';
import { getState, groupvpn, hostConfig, startBootstrap } from '../bench/lab/ipop.js';
import { Lab, requireLab, waitFor } from '../bench/lab/netns.js';

const VIP = { a: '192.168.10.10', b: '192.168.10.11', c: '192.168.10.12', d: '192.168.10.13' } as const;
type Host = keyof typeof VIP;
const HOSTS = Object.keys(VIP) as Host[];
const BROADCAST = '192.168.10.255';
const MDNS = { group: '224.0.0.251', port: 5353 };
const BROADCAST_PORT = 40001;
/** Datagrams per send, and how long receivers listen. */
const COUNT = 5;
const LISTEN_S = 3;
/** Router mode's member refresh with EnableMulticast on (ipop-node.ts). */
const REFRESH_S = 5;

/** argv: port, group ('-': none), local TAP address to join it on, seconds. Prints "ready", then "got <source> <payload>" per datagram. */
const RECEIVER = `import socket,sys,time
port,group,local,secs=int(sys.argv[1]),sys.argv[2],sys.argv[3],float(sys.argv[4])
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
s.bind(('',port))
if group!='-':s.setsockopt(socket.IPPROTO_IP,socket.IP_ADD_MEMBERSHIP,socket.inet_aton(group)+socket.inet_aton(local))
print('ready',flush=True)
end=time.time()+secs
while True:
 left=end-time.time()
 if left<=0:break
 s.settimeout(left)
 try:d,a=s.recvfrom(2048)
 except socket.timeout:break
 print('got',a[0],d.decode(),flush=True)
`;

/** argv: destination, port, local address for IP_MULTICAST_IF ('-': none), count, tag. Sends "<tag> <i>" with SO_BROADCAST. */
const SENDER = `import socket,sys,time
dst,port,local,n,tag=sys.argv[1],int(sys.argv[2]),sys.argv[3],int(sys.argv[4]),sys.argv[5]
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET,socket.SO_BROADCAST,1)
s.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_TTL,255)
if local!='-':s.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_IF,socket.inet_aton(local))
for i in range(n):
 s.sendto(('%s %d'%(tag,i)).encode(),(dst,port));time.sleep(0.05)
print('sent',n)
`;

interface MulticastState { enabled: boolean; sent: number; received: number; dropped: number }

t.test('router mode: broadcast and mDNS reach every member once, only with EnableMulticast', async (t) => {
  if (!requireLab(t, ['python3'])) return;
  const lab = await Lab.create('mcast', ['boot', ...HOSTS]);
  t.teardown(() => lab.destroy());
  const bootIp = lab.ip('boot');
  await startBootstrap(lab, 'boot', 4);
  // On-demand links, as configured by default: the first copies wait for the links they open.
  // D (EnableMulticast off) links to every member (OnDemand off), so it re-reads the member list
  // every 5 s rather than 30 s: it knows the others soon, and still must send them nothing.
  const cfg = Object.fromEntries(HOSTS.map((h) => [h, hostConfig(lab.dir, h, { bootIp, vip: VIP[h], multicast: h !== 'd', ...(h === 'd' ? { onDemand: { enabled: false } } : {}) })])) as Record<Host, string>;
  const started = await Promise.all(HOSTS.map((h) => groupvpn(lab, h, ['start', '-c', cfg[h]])));
  for (const [i, r] of started.entries()) t.equal(r.code, 0, `groupvpn start on ${HOSTS[i]}: ${r.stdout}${r.stderr}`);
  if (started.some((r) => r.code !== 0)) return;
  t.teardown(() => Promise.all(HOSTS.map((h) => groupvpn(lab, h, ['stop', '-c', cfg[h]]))));

  // mDNS responders (avahi, systemd-resolved) use only interfaces that are up, running and multicast-capable.
  const link = await lab.exec('b', ['ip', '-j', 'link', 'show', 'tapipop']);
  const flags = (JSON.parse(link.stdout || '[{}]') as Array<{ flags?: string[] }>)[0]?.flags ?? [];
  for (const f of ['UP', 'LOWER_UP', 'BROADCAST', 'MULTICAST']) t.ok(flags.includes(f), `the TAP is ${f} (${flags.join(',')})`);

  const multicast = async (h: Host) => (await getState(lab, h))?.local_state.multicast as unknown as MulticastState | undefined;
  // The senders copy to the members they have verified: all three others. With EnableMulticast
  // the member list is re-read every REFRESH_S even with on-demand links (otherwise every 30 s).
  const t0 = Date.now();
  const all = await waitFor(async () => (await getState(lab, 'a'))?.peers.length === 3, (2 * REFRESH_S + 10) * 1000, 'A knows 3 members', 500)
    .then(() => true, () => false);
  if (!t.ok(all, `A lists the 3 other members within two refreshes (${((Date.now() - t0) / 1000).toFixed(1)} s)`)) return;
  const allD = await waitFor(async () => (await getState(lab, 'd'))?.peers.length === 3, 30_000, 'D knows 3 members', 500).then(() => true, () => false);
  if (!t.ok(allD, 'D lists the 3 other members')) return;
  t.same(await multicast('a'), { enabled: true, sent: 0, received: 0, dropped: 0 }, 'A: on, nothing yet');
  t.equal((await multicast('d'))?.enabled, false, 'D: off');

  /** Receivers on `to`, then COUNT datagrams from `from`; what each receiver got ("<source> <payload>"). */
  async function exchange(t: Test, from: Host, to: Host[], o: { dst: string; port: number; group?: string; multicastIf?: boolean; tag: string }): Promise<Record<string, string[]>> {
    const rx = to.map((h) => lab.spawn(h, ['python3', '-c', RECEIVER, String(o.port), o.group ?? '-', VIP[h], String(LISTEN_S)]));
    await waitFor(() => rx.every((p) => lab.output(p).includes('ready') || p.exitCode !== null), 10_000, 'receivers ready');
    const s = await lab.exec(from, ['python3', '-c', SENDER, o.dst, String(o.port), o.multicastIf ? VIP[from] : '-', String(COUNT), o.tag], { timeoutMs: 10_000 });
    t.equal(s.code, 0, `${from} sent ${COUNT} to ${o.dst}:${o.port}: ${s.stdout.trim()}${s.stderr.trim()}`);
    await waitFor(() => rx.every((p) => p.exitCode !== null), (LISTEN_S + 10) * 1000, 'receivers done');
    const got: Record<string, string[]> = {};
    for (const [i, h] of to.entries()) {
      const out = lab.output(rx[i]!);
      t.equal(rx[i]!.exitCode, 0, `receiver on ${h} ran: ${out.includes('Error') ? out : 'ok'}`);
      got[h] = [...out.matchAll(/^got (\S+) (.+)$/gm)].map((m) => `${m[1]} ${m[2]}`).sort();
    }
    t.comment(`${o.tag} from ${from}: ${to.map((h) => `${h} got ${got[h]!.length}`).join(', ')}`);
    return got;
  }
  const expected = (from: Host, tag: string) => Array.from({ length: COUNT }, (_, i) => `${VIP[from]} ${tag} ${i}`).sort();

  await t.test('a broadcast to the subnet\'s broadcast address reaches B and C once each, not D', async (t) => {
    const before = { a: await multicast('a'), d: await multicast('d') };
    const got = await exchange(t, 'a', ['b', 'c', 'd'], { dst: BROADCAST, port: BROADCAST_PORT, tag: 'bcast' });
    t.same(got.b, expected('a', 'bcast'), 'B: every datagram, once');
    t.same(got.c, expected('a', 'bcast'), 'C: every datagram, once');
    t.same(got.d, [], 'D (EnableMulticast false): none');
    const after = { a: await multicast('a'), d: await multicast('d') };
    t.ok(after.a!.sent - before.a!.sent >= COUNT, `A sent them to the members (${after.a!.sent - before.a!.sent})`);
    t.ok(after.d!.dropped - before.d!.dropped >= COUNT, `D dropped them (dropMulticastOff +${after.d!.dropped - before.d!.dropped})`);
  });

  await t.test('mDNS (224.0.0.251:5353) reaches B and C, which joined the group on their TAP, once each; not D', async (t) => {
    const before = await multicast('d');
    const got = await exchange(t, 'a', ['b', 'c', 'd'], { dst: MDNS.group, port: MDNS.port, group: MDNS.group, multicastIf: true, tag: 'mdns' });
    t.same(got.b, expected('a', 'mdns'), 'B: every datagram, once');
    t.same(got.c, expected('a', 'mdns'), 'C: every datagram, once');
    t.same(got.d, [], 'D (EnableMulticast false): none');
    const after = await multicast('d');
    t.ok(after!.dropped - before!.dropped >= COUNT, `D dropped them (dropMulticastOff +${after!.dropped - before!.dropped})`);
  });

  await t.test('a member with EnableMulticast false sends neither broadcast nor multicast', async (t) => {
    const before = await multicast('d');
    const bcast = await exchange(t, 'd', ['a', 'b', 'c'], { dst: BROADCAST, port: BROADCAST_PORT, tag: 'dbcast' });
    const mdns = await exchange(t, 'd', ['a', 'b', 'c'], { dst: MDNS.group, port: MDNS.port, group: MDNS.group, multicastIf: true, tag: 'dmdns' });
    for (const h of ['a', 'b', 'c']) t.same([...bcast[h]!, ...mdns[h]!], [], `${h}: none`);
    const after = await multicast('d');
    t.equal(after!.sent, 0, 'D sent no copies');
    t.ok(after!.dropped - before!.dropped >= 2 * COUNT, `D dropped them at its TAP (dropMulticastOff +${after!.dropped - before!.dropped})`);
  });
});
