// Switch mode end to end in network namespaces (root), in the LXC picture of
// bench/lab/switch-sites.ts: two sites, each a bridge br0 with two containers and one groupvpn
// member in switch mode whose TAP joins br0, no VPN address. Containers at different sites
// reach each other as if on one Ethernet: ARP (the second request answered by the local
// member), ping without duplicates or ICMP redirects, a UDP broadcast, an 8 MB TCP stream with
// TAP offload; a remote MAC ages out; frames from an overlay node outside the member list are
// refused. Everything is removed afterwards, also on failure.
// Timing-sensitive (a MAC ages out within 2 s of its age): runs alone (tools/run-tests.sh).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import t from 'tap';
import { BIN, OVERLAY_PORT, SECRET } from '../bench/lab/ipop.js';
import { pingArgv, requireLab, stopProcess, waitFor } from '../bench/lab/netns.js';
import { CONTAINERS, SITES, SwitchSites, type Site, type SwitchState } from '../bench/lab/switch-sites.js';
import { tcpTransfer } from './helpers/transfer.js';

const AGE_S = 10;
const INTRUDER_MAC = '02:de:ad:be:ef:01';

t.test('switch mode joins two sites\' bridges into one Ethernet', async (t) => {
  if (!requireLab(t, ['ping', 'arping', 'tcpdump', 'sysctl'])) return;
  const t0 = Date.now();
  const sites = await SwitchSites.create({ prefix: 'swnet', macAgeSeconds: AGE_S });
  t.teardown(() => sites.destroy());
  const { lab } = sites;
  t.comment(`lab ready after ${((Date.now() - t0) / 1000).toFixed(1)} s, TAP MTU ${sites.mtu}`);
  const c = (name: string) => sites.container(name);
  const state = async (site: Site): Promise<SwitchState> => {
    const s = await sites.state(site);
    if (!s) throw new Error(`no get_state answer from ${site}`);
    return s;
  };
  const counters = async (site: Site) => (await state(site)).local_state.switch;
  const uid = { sa: (await state('sa')).local_state.uid, sb: (await state('sb')).local_state.uid };
  /** The MACs a site's member has learnt behind the other site's member. */
  const remoteMacs = async (site: Site) => (await state(site)).peers.find((p) => p.uid === uid[site === 'sa' ? 'sb' : 'sa'])?.macs ?? [];
  /** tcpdump on a site's bridge; stop() ends it and gives its lines. */
  const capture = async (site: Site, filter: string) => {
    const p: ChildProcess = lab.spawn(site, ['tcpdump', '-lnei', 'br0', filter]);
    await waitFor(() => /listening on br0/.test(lab.output(p)) || p.exitCode !== null, 10_000, `tcpdump in ${site}`);
    return {
      stop: async () => {
        await stopProcess(p);
        return lab.output(p);
      },
    };
  };

  await t.test('each member runs switch mode, its TAP a port of br0, without an IP address', async (t) => {
    for (const site of SITES) {
      const s = await state(site);
      t.equal(s.local_state.mode, 'switch', `${site}: get_state says switch mode`);
      const link = await lab.exec(site, ['ip', '-o', 'link', 'show', 'tapipop']);
      t.match(link.stdout, /master br0 .*state (UP|UNKNOWN)/, `${site}: ${link.stdout.trim()}`);
      const addr = await lab.exec(site, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'tapipop']);
      t.equal(addr.stdout.trim(), '', `${site}: the TAP has no IPv4 address`);
    }
  });

  await t.test('ARP across the sites; the second request is answered by the local member, not flooded', async (t) => {
    const arping = (from: string, to: string) => lab.exec(from, ['arping', '-c', '1', '-w', '5', '-I', 'eth0', c(to).ip], { timeoutMs: 10_000 });
    const before = await counters('sa');
    // The member that started first may not list the other yet: a flood re-reads a list older
    // than 1 s (while alone), so a request within 1 s of its last read may be lost. A few tries.
    let first = await arping('a1', 'b1'), tries = 1;
    for (; tries < 5 && first.code !== 0; tries++) first = await arping('a1', 'b1');
    t.equal(first.code, 0, `a1 → b1's IP (attempts: ${tries}): ${first.stdout}${first.stderr}`);
    t.match(first.stdout, new RegExp(`reply from ${c('b1').ip} \\[${c('b1').mac}\\]`, 'i'), 'b1 answers with its MAC');
    const mid = await counters('sa');
    t.ok(mid.flooded > before.flooded, `the first request was flooded (${before.flooded} → ${mid.flooded})`);
    const learnt = (await state('sa')).local_state.arp.find((e) => e.ip === c('b1').ip);
    t.same(learnt && { mac: learnt.mac, port: learnt.port }, { mac: c('b1').mac, port: uid.sb }, 'sa learnt b1\'s IP behind sb\'s member');

    await lab.exec('a1', ['ip', 'neigh', 'flush', 'dev', 'eth0']);
    const second = await arping('a1', 'b1');
    t.equal(second.code, 0, `again: ${second.stdout}${second.stderr}`);
    t.match(second.stdout, new RegExp(`reply from ${c('b1').ip} \\[${c('b1').mac}\\]`, 'i'), 'the same answer');
    const after = await counters('sa');
    t.equal(after.localArpAnswers, mid.localArpAnswers + 1, 'answered by sa\'s member');
    t.equal(after.flooded, mid.flooded, 'and not flooded');

    const back = await arping('b1', 'a1');
    t.equal(back.code, 0, `b1 → a1's IP: ${back.stdout}${back.stderr}`);
    t.match(back.stdout, new RegExp(`\\[${c('a1').mac}\\]`, 'i'));
    for (const site of SITES) {
      const other = uid[site === 'sa' ? 'sb' : 'sa'];
      t.ok((await state(site)).peers.some((p) => p.uid === other), `${site} lists the other site's member`);
    }
  });

  await t.test('ping between the sites both ways: every reply once, no ICMP redirect', async (t) => {
    const dumps = await Promise.all(SITES.map((s) => capture(s, 'icmp')));
    // The first ping may wait for the members' link; then 5 more must all come back once.
    // b2 stays silent until the aging test.
    await waitFor(async () => (await lab.exec('a2', pingArgv(c('b1').ip, { count: 1, waitS: 1 }), { timeoutMs: 5000 })).code === 0, 20_000, 'a2 reaches b1', 200).catch(() => {});
    for (const [from, to] of [['a1', 'b1'], ['b1', 'a1'], ['a2', 'b1'], ['b1', 'a2']] as const) {
      const r = await lab.exec(from, pingArgv(c(to).ip, { count: 5, intervalS: 0.2, waitS: 2 }), { timeoutMs: 20_000 });
      t.equal(r.code, 0, `${from} → ${to}: ${/^.*packets transmitted.*$/m.exec(r.stdout)?.[0] ?? r.stdout + r.stderr}`);
      t.match(r.stdout, /5 packets transmitted, 5 received/, `${from} → ${to}: 5 of 5`);
      t.notMatch(r.stdout, /DUP!/, `${from} → ${to}: no duplicate`);
    }
    const [da, db] = await Promise.all(dumps.map((d) => d.stop()));
    t.match(da, /ICMP echo request/, 'tcpdump on sa\'s br0 saw the pings');
    t.notMatch(da + db, /redirect/i, 'no ICMP redirect on either bridge');
    for (const ns of [...SITES, ...CONTAINERS.map((x) => x.name)]) {
      const snmp = (await lab.exec(ns, ['cat', '/proc/net/snmp'])).stdout.split('\n').filter((l) => l.startsWith('Icmp:'));
      const [head, vals] = snmp.map((l) => l.split(/\s+/));
      const i = head?.indexOf('OutRedirects') ?? -1;
      t.equal(i > 0 ? vals?.[i] : undefined, '0', `${ns} sent no ICMP redirect`);
    }
  });

  await t.test('a UDP broadcast from a container at sa reaches a container at sb', async (t) => {
    const rx = lab.spawn('b1', [process.execPath, '-e', `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>{console.log('got '+r.address+' '+m);process.exit(0)});` +
      `s.bind(5999,'0.0.0.0',()=>console.log('listening'));setTimeout(()=>process.exit(3),15000);`]);
    await waitFor(() => /listening/.test(lab.output(rx)), 10_000, 'receiver');
    const tx = await lab.exec('a1', [process.execPath, '-e', `const s=require('dgram').createSocket('udp4');s.bind(()=>{s.setBroadcast(true);let i=0;` +
      `const t=setInterval(()=>{s.send('switch broadcast '+i,5999,'10.0.3.255');if(++i>=10){clearInterval(t);setTimeout(()=>s.close(),100)}},200)});`], { timeoutMs: 10_000 });
    t.equal(tx.code, 0, `sent: ${tx.stderr}`);
    const got = await waitFor(() => /got \S+ switch broadcast \d/.exec(lab.output(rx)), 5000, 'the broadcast at b1').catch(() => null);
    t.ok(got, `b1 received it: ${lab.output(rx).trim()}`);
    t.match(lab.output(rx), `got ${c('a1').ip} switch broadcast`, 'from a1');
  });

  await t.test('an 8 MB TCP transfer between the sites arrives intact, with TAP offload on', async (t) => {
    const before = await counters('sa');
    const x = await tcpTransfer(lab, 'a1', 'b1', c('b1').ip, 8, 60_000);
    t.equal(x.code, 0, x.stderr);
    t.equal(x.receivedBytes, 8 * 1024 * 1024, 'all bytes');
    t.equal(x.receivedDigest, x.sentDigest, 'same SHA-256');
    t.match(x.sentDigest, /^[0-9a-f]{64}$/, 'the sender reported its digest');
    const st = { sa: await sites.status('sa', true), sb: await sites.status('sb', true) };
    for (const site of SITES) t.equal(st[site].offload, true, `${site}'s TAP offloads`);
    const tr = { sa: st.sa.traffic as Record<string, number>, sb: st.sb.traffic as Record<string, number> };
    t.ok(tr.sa.txOffload > 0 && tr.sb.rxOffload > 0, `super-packets crossed whole: sa sent ${tr.sa.txOffload} offloaded, sb wrote ${tr.sb.rxOffload}`);
    const after = await counters('sa');
    // 8 MB in super-packets of up to 64 KB: at least 128 of them, each to b1's member.
    t.ok(after.unicast - before.unicast >= 128, `sa sent the stream as known unicast (${after.unicast - before.unicast} frames)`);
    t.ok(after.flooded - before.flooded < 10, `not flooded (${after.flooded - before.flooded} floods meanwhile)`);
  });

  await t.test('frames from an overlay node outside the member list are refused', async (t) => {
    const cfg = join(lab.dir, 'non-member.config');
    writeFileSync(cfg, `<?xml version="1.0"?>
<NodeConfig>
  <BrunetNamespace>labrealm</BrunetNamespace>
  <EdgeListeners><EdgeListener type="udp"><port>${OVERLAY_PORT + 1}</port></EdgeListener></EdgeListeners>
  <RemoteTAs><Transport>brunet.udp://${lab.ip('boot')}:${OVERLAY_PORT}</Transport></RemoteTAs>
  <XmlRpcManager><Enabled>false</Enabled></XmlRpcManager>
  <Security><GroupSecret>${SECRET}</GroupSecret></Security>
</NodeConfig>
`);
    const before = await counters('sa');
    const dump = await capture('sa', `ether src ${INTRUDER_MAC} or ether proto 0x88b5 or icmp`);
    const r = await lab.exec('boot', [process.execPath, BIN.nonMember, cfg, uid.sa, '5', INTRUDER_MAC], { timeoutMs: 60_000 });
    t.equal(r.code, 0, `the non-member connected to sa's member and sent its frames: ${r.stdout}${r.stderr}`);
    t.match(r.stdout, /"sent":5/);
    const refused = await waitFor(async () => { const n = (await counters('sa')).dropNotMember; return n >= before.dropNotMember + 5 ? n : 0; }, 10_000, 'dropNotMember', 250).catch(() => 0);
    t.ok(refused, `sa's member refused them (dropNotMember ${before.dropNotMember} → ${refused || (await counters('sa')).dropNotMember})`);
    // A control: a member's traffic does show up in the same capture.
    await lab.exec('b1', pingArgv(c('a1').ip, { count: 2, intervalS: 0.2, waitS: 2 }), { timeoutMs: 10_000 });
    const seen = await dump.stop();
    t.match(seen, /ICMP echo request/, 'the capture on sa\'s br0 works (a member\'s ping is in it)');
    t.notMatch(seen, new RegExp(`${INTRUDER_MAC}|0x88b5`, 'i'), 'and no frame of the non-member reached the bridge');
    const macs = (await state('sa')).peers.flatMap((p) => p.macs ?? []).concat((await state('sa')).local_state.local_macs);
    t.notOk(macs.includes(INTRUDER_MAC), 'nor was its MAC learnt');
  });

  await t.test(`a remote MAC ages out ${AGE_S} s after its last frame`, async (t) => {
    // b2 has been silent so far; one gratuitous ARP makes its MAC known at sa, then nothing.
    const sent = Date.now();
    const g = await lab.exec('b2', ['arping', '-U', '-c', '1', '-I', 'eth0', c('b2').ip], { timeoutMs: 10_000 });
    t.equal(g.code, 0, `gratuitous ARP from b2 sent: ${g.stdout}${g.stderr}`);
    const known = await waitFor(async () => (await remoteMacs('sa')).includes(c('b2').mac), 3000, 'b2 learnt at sa', 100).then(() => true, () => false);
    t.ok(known, `sa learnt b2's MAC behind sb's member`);
    const gone = await waitFor(async () => !(await remoteMacs('sa')).includes(c('b2').mac), (AGE_S + 4) * 1000, 'b2 aged out at sa', 200).then(() => Date.now() - sent, () => -1);
    t.ok(gone >= (AGE_S - 1) * 1000, `not before its age (${gone} ms)`);
    t.ok(gone > 0 && gone <= (AGE_S + 2) * 1000, `gone within ${AGE_S} + 2 s of its only frame (${gone} ms)`);
    const arp = (await state('sa')).local_state.arp.find((e) => e.ip === c('b2').ip);
    t.equal(arp, undefined, 'its ARP entry went too');
  });
});
