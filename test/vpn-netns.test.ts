// GroupVPN end to end in network namespaces (root): a bootstrap overlay, hosts running
// `groupvpn start`, ping, a 50 MB TCP transfer, bget of the mapping, get_state, on-demand
// links, restart, a refused duplicate IP, all-members mode, DHCP with the OS's client, and
// `groupvpn stop` leaving nothing behind. The lab and everything in it is removed afterwards.
// Timing-sensitive (a 24-node bootstrap ring forms within 60 s; failed twice beside other tests at load 20): runs alone (tools/run-tests.sh).
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { BIN, getState, groupvpn, hostConfig, ROOT, startBootstrap } from '../bench/lab/ipop.js';
import { Lab, pingArgv, requireLab, run, waitFor } from '../bench/lab/netns.js';
import { tcpTransfer } from './helpers/transfer.js';

// The addresses a node holds connections to, from its control API (ConnectionTable.GetConnections).
const CONNECTIONS = `const {ControlClient}=await import(process.argv[1]);const c=new ControlClient(10000,'127.0.0.1',4);` +
  `const r=await c.call('localproxy',['ConnectionTable.GetConnections'],5000);c.close();process.stdout.write(JSON.stringify(r.map((x)=>x.address)));`;

t.test('GroupVPN in network namespaces', async (t) => {
  if (!requireLab(t, ['ping', 'ss', 'udhcpc'])) return;
  const lab = await Lab.create('vpn', ['boot', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']);
  t.teardown(() => lab.destroy());
  const bootIp = lab.ip('boot');
  await startBootstrap(lab, 'boot', 24);
  const onDemand = { enabled: true, threshold: 128, idle: 6 };
  const cfg = {
    a: hostConfig(lab.dir, 'a', { bootIp, vip: '192.168.10.10', onDemand }),
    b: hostConfig(lab.dir, 'b', { bootIp, vip: '192.168.10.11', onDemand }),
    // c runs without TAP offload: it must take super-packets from offloading members as ordinary segments.
    c: hostConfig(lab.dir, 'c', { bootIp, vip: '192.168.10.12', onDemand, offload: false }),
  };
  const ping = async (from: string, ip: string) => {
    await waitFor(async () => (await lab.exec(from, pingArgv(ip, { count: 1, waitS: 1 }), { timeoutMs: 5000 })).code === 0, 20_000, `ping ${from} → ${ip}`, 200).catch(() => {});
    return lab.exec(from, pingArgv(ip, { count: 3, waitS: 2 }), { timeoutMs: 15_000 });
  };
  const noTrace = async (host: string) => {
    const link = await lab.exec(host, ['ip', 'link', 'show', 'tapipop']);
    const sock = await lab.exec(host, ['ss', '-Huan', 'sport = :5800']);
    // Asked from outside the namespace, so the asking process is not counted.
    const procs = await run(['ip', 'netns', 'pids', lab.ns(host)]);
    return { tap: link.code === 0, socket: sock.stdout.trim() !== '', pids: procs.stdout.trim() };
  };

  const started = await Promise.all((['a', 'b', 'c'] as const).map((h) => groupvpn(lab, h, ['start', '-c', cfg[h]])));
  for (const [i, r] of started.entries()) t.equal(r.code, 0, `groupvpn start on ${'abc'[i]}: ${r.stdout}${r.stderr}`);
  t.match(started[0]!.stdout, /started .*192\.168\.10\.10 on tapipop/);
  if (started.some((r) => r.code !== 0)) return;
  const bAddress = (await getState(lab, 'b'))!.local_state.uid!;

  await t.test('ping both ways', async (t) => {
    t.equal((await ping('a', '192.168.10.11')).code, 0, 'A → B');
    t.equal((await ping('b', '192.168.10.10')).code, 0, 'B → A');
  });

  await t.test('IPv6: member addresses ping each other', async (t) => {
    const [sa, sb] = [await getState(lab, 'a'), await getState(lab, 'b')];
    const [a6, b6] = [sa?.local_state.ip6, sb?.local_state.ip6];
    t.match(a6, /^fd[0-9a-f]{2}:[0-9a-f:]+:c0a8:a0a$/, `A's IPv6 address is the namespace prefix plus its IPv4 (${a6})`);
    t.match(b6, /:c0a8:a0b$/, `and B's (${b6})`);
    if (!a6 || !b6) return;
    t.equal((await ping('a', b6)).code, 0, 'A → B over IPv6');
    t.equal((await ping('b', a6)).code, 0, 'B → A over IPv6');
  });

  await t.test('bget on A shows B as the owner of its IP', async (t) => {
    const r = await lab.exec('a', [process.execPath, BIN.bget, '--quiet', 'dhcp:labns:192.168.10.11']);
    t.equal(r.code, 0, r.stderr);
    t.equal(r.stdout.trim(), bAddress);
  });

  await t.test('a 50 MB TCP transfer arrives intact', async (t) => {
    const x = await tcpTransfer(lab, 'a', 'b', '192.168.10.11', 50, 120_000);
    t.equal(x.code, 0, x.stderr);
    t.equal(x.receivedBytes, 50 * 1024 * 1024, 'all bytes');
    t.equal(x.receivedDigest, x.sentDigest, 'same SHA-256');
    t.notOk(createHash('sha256').update('').digest('hex') === x.receivedDigest);
    // The TAPs offload TCP segmentation: the stream crossed as super-packets, written whole.
    const traffic = async (h: 'a' | 'b') => {
      const r = await groupvpn(lab, h, ['status', '-c', cfg[h], '--json']);
      return JSON.parse(r.stdout) as { offload?: boolean; traffic?: Record<string, number> };
    };
    const [sa, sb] = [await traffic('a'), await traffic('b')];
    t.ok(sa.offload && sb.offload, 'both TAPs offload');
    t.ok((sa.traffic?.txOffload ?? 0) > 0, `A sent ${sa.traffic?.txOffload} offloaded messages of ${sa.traffic?.txFrames}`);
    t.ok((sb.traffic?.rxOffload ?? 0) > 0, `B wrote ${sb.traffic?.rxOffload} offloaded messages of ${sb.traffic?.rxFrames}`);
    t.ok(sa.traffic!.txBytes / sa.traffic!.txFrames > 4000, `super-packets: ${(sa.traffic!.txBytes / sa.traffic!.txFrames).toFixed(0)} bytes per message on average`);
  });

  await t.test('a member without offload takes a stream of super-packets intact, both ways', async (t) => {
    for (const [from, to, ip] of [['a', 'c', '192.168.10.12'], ['c', 'a', '192.168.10.10']] as const) {
      const x = await tcpTransfer(lab, from, to, ip, 8, 60_000);
      // A failed transfer says whether the receiver's claim was readable, from the sender and the bootstrap overlay.
      const claim = x.code === 0 ? '' : (await Promise.all([from, 'boot'].map(async (h) => {
        const r = await lab.exec(h, [process.execPath, BIN.bget, '--quiet', `dhcp:labns:${ip}`]);
        return `claim of ${ip} read at ${h}: ${r.code === 0 ? r.stdout.trim() || 'none' : r.stderr.trim()}`;
      }))).join('; ');
      t.equal(x.code, 0, `${x.stderr} ${claim}`);
      t.equal(x.receivedBytes, 8 * 1024 * 1024, `${from} → ${to}: all bytes`);
      t.equal(x.receivedDigest, x.sentDigest, `${from} → ${to}: same SHA-256`);
    }
    const c = JSON.parse((await groupvpn(lab, 'c', ['status', '-c', cfg.c, '--json'])).stdout) as { offload?: boolean; traffic?: Record<string, number> };
    t.equal(c.offload, false, 'c runs without offload');
    t.ok((c.traffic?.rxOffload ?? 0) > 0, `c received ${c.traffic?.rxOffload} offloaded messages and cut them itself`);
    t.equal(c.traffic?.txOffload, 0, 'and sent none');
  });

  await t.test('get_state on A lists B online after traffic', async (t) => {
    // Traffic of its own: the transfers above may be older than the 6 s idle timeout by now (a
    // slow machine), and then the on-demand link has been trimmed, as it should be.
    await lab.exec('a', pingArgv('192.168.10.11', { count: 10, intervalS: 0.1, waitS: 2 }).concat(['-s', '1000']), { timeoutMs: 20_000 });
    const online = await waitFor(async () => (await getState(lab, 'a'))?.peers.find((p) => p.ip4 === '192.168.10.11')?.status === 'online', 10_000, 'B online', 250)
      .then(() => true, () => false);
    const s = await getState(lab, 'a');
    t.equal(s?.local_state.ip4, '192.168.10.10');
    t.ok(online, 'B online at A');
    const st = await groupvpn(lab, 'a', ['status', '-c', cfg.a]);
    t.match(st.stdout, /192\.168\.10\.11\s+online\s+direct\s+structured\.\S+\s+udp\s+[\d.]+ ms/, st.stdout);
    t.match(st.stdout, /offload on\)[\s\S]*traffic\s+sent \d+ frames \([1-9]\d* offloaded\)[\s\S]*fragments\s+[1-9]\d* messages sent in fragments/, 'status shows offload and fragment counters');
  });

  await t.test('traffic opens an on-demand connection; it is trimmed after the idle TTL', async (t) => {
    // Near links and shortcuts link some members anyway: two more members (h, i) give ten
    // candidate pairs, and the node's own connection table says which pair is unlinked.
    const more = { h: hostConfig(lab.dir, 'h', { bootIp, vip: '192.168.10.20', onDemand }), i: hostConfig(lab.dir, 'i', { bootIp, vip: '192.168.10.21', onDemand }) };
    const extra = await Promise.all((['h', 'i'] as const).map((h) => groupvpn(lab, h, ['start', '-c', more[h]])));
    for (const [k, r] of extra.entries()) t.equal(r.code, 0, `groupvpn start on ${'hi'[k]}: ${r.stdout}${r.stderr}`);
    t.teardown(() => Promise.all((['h', 'i'] as const).map((h) => groupvpn(lab, h, ['stop', '-c', more[h]]))));
    const hosts = { a: '192.168.10.10', b: '192.168.10.11', c: '192.168.10.12', h: '192.168.10.20', i: '192.168.10.21' } as Record<string, string>;
    const statusAt = async (from: string, to: string) => (await getState(lab, from))?.peers.find((p) => p.ip4 === hosts[to]);
    const uid = async (h: string) => (await getState(lab, h))?.local_state.uid;
    const linked = async (from: string): Promise<string[]> => {
      const r = await lab.exec(from, [process.execPath, '--input-type=module', '-e', CONNECTIONS, join(ROOT, 'dist/src/control/client.js')], { timeoutMs: 10_000 });
      try { return JSON.parse(r.stdout) as string[]; } catch { return []; }
    };
    let pair: [string, string] | undefined;
    for (const [x, y] of [['h', 'i'], ['h', 'a'], ['i', 'b'], ['h', 'c'], ['i', 'a'], ['h', 'b'], ['i', 'c'], ['a', 'c'], ['b', 'c'], ['a', 'b']] as Array<[string, string]>) {
      const [ux, uy] = [await uid(x), await uid(y)];
      if (ux && uy && !(await linked(x)).includes(uy) && !(await linked(y)).includes(ux)) { pair = [x, y]; break; }
    }
    if (!t.ok(pair, 'a pair of members without a direct connection')) return;
    const [x, y] = pair!;
    t.equal((await lab.exec(x, pingArgv(hosts[y]!, { count: 10, intervalS: 0.1, waitS: 2 }).concat(['-s', '1000']), { timeoutMs: 20_000 })).code, 0, `${x} pings ${y}`);
    const on = await waitFor(async () => (await statusAt(x, y))?.type === 'structured.ondemand', 10_000, 'on-demand link').then(() => true, () => false);
    t.ok(on, `${x} has a direct on-demand connection to ${y}`);
    const off = await waitFor(async () => (await statusAt(x, y))?.status === 'offline', 25_000, 'trim').then(() => true, () => false);
    t.ok(off, 'closed after the 6 s idle timeout');
  });

  await t.test('restarting B keeps its IP and mapping; stop leaves nothing behind', async (t) => {
    const stop = await groupvpn(lab, 'b', ['stop', '-c', cfg.b]);
    t.equal(stop.code, 0, stop.stdout + stop.stderr);
    const left = await noTrace('b');
    t.same(left, { tap: false, socket: false, pids: '' }, 'no TAP, no socket, no process');
    const again = await groupvpn(lab, 'b', ['start', '-c', cfg.b]);
    t.equal(again.code, 0, again.stdout + again.stderr);
    t.match(again.stdout, /192\.168\.10\.11/);
    t.equal((await ping('a', '192.168.10.11')).code, 0, 'reachable again');
    const r = await lab.exec('a', [process.execPath, BIN.bget, '--quiet', 'dhcp:labns:192.168.10.11']);
    t.equal(r.stdout.trim(), bAddress, 'same owner');
  });

  await t.test('a second node configured with B\'s IP is refused', async (t) => {
    const d = hostConfig(lab.dir, 'd', { bootIp, vip: '192.168.10.11' });
    const r = await groupvpn(lab, 'd', ['start', '-c', d]);
    t.not(r.code, 0);
    t.match(r.stderr, new RegExp(`192\\.168\\.10\\.11 in namespace labns is already claimed by ${bAddress}`));
    t.same(await noTrace('d'), { tap: false, socket: false, pids: '' }, 'nothing left running');
  });

  await t.test('with on-demand off, a member connects to all members without traffic', async (t) => {
    const g = hostConfig(lab.dir, 'g', { bootIp, vip: '192.168.10.13', onDemand: { enabled: false } });
    const r = await groupvpn(lab, 'g', ['start', '-c', g]);
    t.equal(r.code, 0, r.stdout + r.stderr);
    const all = await waitFor(async () => {
      const s = await getState(lab, 'g');
      return s && ['192.168.10.10', '192.168.10.11', '192.168.10.12'].every((ip) => s.peers.find((p) => p.ip4 === ip)?.status === 'online');
    }, 20_000, 'all members online').then(() => true, () => false);
    t.ok(all, 'A, B and C online at G');
  });

  await t.test('DHCP: two nodes get distinct addresses and the OS client accepts the lease', async (t) => {
    const xml = join(lab.dir, 'dhcp.xml');
    writeFileSync(xml, '<DHCPConfig><Namespace>dhcpns</Namespace><Netmask>255.255.255.0</Netmask><IPBase>10.77.0.0</IPBase><LeaseTime>600</LeaseTime></DHCPConfig>');
    const e = hostConfig(lab.dir, 'e', { bootIp, ns: 'dhcpns', dhcpConfigFile: xml });
    const f = hostConfig(lab.dir, 'f', { bootIp, ns: 'dhcpns' });
    const re = await groupvpn(lab, 'e', ['start', '-c', e]);
    t.equal(re.code, 0, re.stdout + re.stderr);
    const rf = await groupvpn(lab, 'f', ['start', '-c', f]);
    t.equal(rf.code, 0, rf.stdout + rf.stderr);
    const ipE = (await getState(lab, 'e'))?.local_state.ip4, ipF = (await getState(lab, 'f'))?.local_state.ip4;
    t.match(ipE, /^10\.77\.0\.\d+$/);
    t.match(ipF, /^10\.77\.0\.\d+$/);
    t.not(ipE, ipF, 'distinct');
    const u = await lab.exec('e', ['udhcpc', '-i', 'tapipop', '-n', '-q', '-f', '-t', '4', '-T', '2', '-s', '/bin/true'], { timeoutMs: 30_000 });
    t.match(u.stdout + u.stderr, new RegExp(`lease of ${ipE!.replace(/\./g, '\\.')} obtained`), 'udhcpc got our lease');
    t.equal((await ping('e', ipF!)).code, 0, 'the DHCP members reach each other');
  });

  await t.test('groupvpn stop everywhere leaves no TAP, socket or process', async (t) => {
    // The hosts stop at once (each its own namespace and state); checked in host order.
    const hosts = ['a', 'b', 'c', 'e', 'f', 'g'];
    const stopped = await Promise.all(hosts.map(async (h) => {
      const r = await groupvpn(lab, h, ['stop', '-c', join(lab.dir, `${h}.config`)]);
      return { r, left: await noTrace(h) };
    }));
    for (const [i, { r, left }] of stopped.entries()) {
      t.equal(r.code, 0, `${hosts[i]}: ${r.stdout}${r.stderr}`);
      t.same(left, { tap: false, socket: false, pids: '' }, `${hosts[i]} clean`);
    }
  });
});
