// Nested GroupVPNs in network namespaces (root), as IPOP's recursive set-up: an outer network
// (router mode, 192.168.1.0/24 on tapouter, joined through a bootstrap overlay on the underlay)
// and an inner one (10.0.3.0/24 on tapinner) whose overlay runs over the outer: the inner
// members bind only tapouter (DevicesToBind), the inner joiner's RemoteTA is the inner seed's
// OUTER virtual IP, and the outer ignores tapinner (NetworkIgnoreList). Checked: each overlay
// advertises only its own underlay, pings cross the inner network, the inner TAP's MTU is
// derived from tapouter's and a full-size DF ping crosses with no IP fragment anywhere, the
// underlay carries neither inner addresses nor payload in plaintext, stopping the outer on one
// host for 15 s cuts the inner path and restarting it restores it at once, a colliding instance
// is refused, and the inner network also runs in switch mode with its TAP in a bridge.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { groupvpn, hostConfig, ROOT, startBootstrap } from '../bench/lab/ipop.js';
import { Lab, pingArgv, requireLab, stopProcess, waitFor } from '../bench/lab/netns.js';

const OUTER = { a: '192.168.1.1', b: '192.168.1.2' } as const;
const INNER = { a: '10.0.3.1', b: '10.0.3.2' } as const;
const INNER_PORT = 17001;
/** How long the outer stays down on b. */
const OUTAGE_MS = 15_000;
// ping -p: 16 bytes repeated through the payload, to be looked for in captures.
const PATTERN = 'a5c3e1f00d15ea5e9bb7c0ffee42d00d';

// A control API call (XmlRpc port) through the node's localproxy, printed as JSON.
const CONTROL = `const {ControlClient}=await import(process.argv[1]);const c=new ControlClient(Number(process.argv[2]),'127.0.0.1',4);` +
  `const r=await c.call('localproxy',[process.argv[3]],5000);c.close();process.stdout.write(JSON.stringify(r));`;

/** Ip counters of a namespace (/proc/net/snmp): FragCreates, FragOKs, ReasmReqds… */
function ipCounters(snmp: string): Record<string, number> {
  const lines = snmp.split('\n').filter((l) => l.startsWith('Ip: '));
  const [names, values] = [lines[0]!.split(/\s+/).slice(1), lines[1]!.split(/\s+/).slice(1)];
  return Object.fromEntries(names.map((n, i) => [n, Number(values[i])]));
}

/** Every rotation of the repeated 16-byte pattern: a payload holds it at any phase. */
const patternRotations = (hex: string): Buffer[] => {
  const p = Buffer.from(hex + hex, 'hex');
  return Array.from({ length: 16 }, (_, i) => p.subarray(i, i + 16));
};
const ipBytes = (ip: string) => Buffer.from(ip.split('.').map(Number));

t.test('an inner GroupVPN over an outer one', async (t) => {
  if (!requireLab(t, ['ping', 'tcpdump'])) return;
  const lab = await Lab.create('nested', ['boot', 'a', 'b']);
  t.teardown(() => lab.destroy());
  const bootIp = lab.ip('boot');
  await startBootstrap(lab, 'boot', 4);
  const outer = {
    a: hostConfig(lab.dir, 'outer-a', { bootIp, vip: OUTER.a, device: 'tapouter', networkIgnoreList: ['tapinner', 'brinner'] }),
    b: hostConfig(lab.dir, 'outer-b', { bootIp, vip: OUTER.b, device: 'tapouter', networkIgnoreList: ['tapinner', 'brinner'] }),
  };
  const innerOpts = {
    bootIp, device: 'tapinner', devicesToBind: ['tapouter'], realm: 'innerrealm', secret: 'inner group secret', ns: 'innerns',
    getStatePort: 5801, xmlRpcPort: 10001, overlayPort: INNER_PORT,
  };
  const inner = {
    // The seed: no RemoteTAs, it starts the inner overlay; b joins it at a's outer address.
    a: hostConfig(lab.dir, 'inner-a', { ...innerOpts, vip: INNER.a, remoteTAs: [] }),
    b: hostConfig(lab.dir, 'inner-b', { ...innerOpts, vip: INNER.b, remoteTAs: [`brunet.udp://${OUTER.a}:${INNER_PORT}`] }),
  };
  const control = async (host: string, port: number, method: string): Promise<unknown> => {
    const r = await lab.exec(host, [process.execPath, '--input-type=module', '-e', CONTROL, join(ROOT, 'dist/src/control/client.js'), String(port), method], { timeoutMs: 10_000 });
    try { return JSON.parse(r.stdout); } catch { return undefined; }
  };
  const pingOnce = async (from: string, ip: string) => (await lab.exec(from, pingArgv(ip, { count: 1, waitS: 1 }), { timeoutMs: 5000 })).code === 0;
  const reachable = (from: string, ip: string, ms = 20_000) =>
    waitFor(() => pingOnce(from, ip), ms, `ping ${from} → ${ip}`, 200).then(() => true, () => false);
  const status = async (host: string, cfg: string) => {
    const r = await groupvpn(lab, host, ['status', '-c', cfg, '--json'], 15_000);
    try { return JSON.parse(r.stdout) as Record<string, unknown>; } catch { return undefined; }
  };
  const mtuOf = async (host: string, dev: string) => Number((await lab.exec(host, ['cat', `/sys/class/net/${dev}/mtu`])).stdout.trim());

  // Outer first (both at once), then the inner seed, then the inner joiner.
  const startedOuter = await Promise.all((['a', 'b'] as const).map((h) => groupvpn(lab, h, ['start', '-c', outer[h]])));
  for (const [i, r] of startedOuter.entries()) t.equal(r.code, 0, `outer start on ${'ab'[i]}: ${r.stdout}${r.stderr}`);
  if (startedOuter.some((r) => r.code !== 0)) return;
  t.ok(await reachable('a', OUTER.b), 'the outer network carries a → b');
  for (const h of ['a', 'b'] as const) {
    const r = await groupvpn(lab, h, ['start', '-c', inner[h]]);
    t.equal(r.code, 0, `inner start on ${h}: ${r.stdout}${r.stderr}`);
    if (r.code !== 0) return;
  }

  await t.test('each overlay advertises only its own underlay', async (t) => {
    for (const h of ['a', 'b'] as const) {
      const o = await control(h, 10000, 'Information.Info') as { localips?: string[] } | undefined;
      t.same(o?.localips, [lab.ip(h)], `the outer overlay on ${h} advertises only its underlay address (neither TAP's)`);
      const i = await control(h, 10001, 'Information.Info') as { localips?: string[] } | undefined;
      t.same(i?.localips, [OUTER[h]], `the inner overlay on ${h} advertises only tapouter's address (DevicesToBind)`);
    }
    const cons = await control('b', 10001, 'ConnectionTable.GetConnections') as Array<{ remote: string }> | undefined;
    t.ok(cons && cons.length > 0 && cons.every((c) => c.remote.includes(`//${OUTER.a}:${INNER_PORT}`)), `b's inner connections run to a's outer address: ${JSON.stringify(cons?.map((c) => c.remote))}`);
  });

  await t.test('pings cross the inner network both ways', async (t) => {
    t.ok(await reachable('a', INNER.b), 'inner a → b');
    t.ok(await reachable('b', INNER.a), 'inner b → a');
  });

  await t.test('MTUs: outer from the underlay, inner from tapouter; a full-size DF ping crosses unfragmented', async (t) => {
    for (const h of ['a', 'b'] as const) {
      t.equal(await mtuOf(h, 'tapouter'), 1336, `tapouter on ${h}: 1500 - 157, down to 8`);
      t.equal(await mtuOf(h, 'tapinner'), 1176, `tapinner on ${h}: 1336 - 157, down to 8`);
      const si = await status(h, inner[h]), so = await status(h, outer[h]);
      t.same([so?.underlay, so?.mtu, si?.underlay, si?.mtu], ['eth0', 1336, 'tapouter', 1176], `status on ${h} names the underlays`);
    }
    const snmp = async (h: string) => ipCounters((await lab.exec(h, ['cat', '/proc/net/snmp'])).stdout);
    const fragmented = async (h: 'a' | 'b', cfg: string) => ((await status(h, cfg)) as { traffic?: Record<string, number> } | undefined)?.traffic?.fragmentedOut;
    const counters = async () => ({
      a: { ip: await snmp('a'), outer: await fragmented('a', outer.a), inner: await fragmented('a', inner.a) },
      b: { ip: await snmp('b'), outer: await fragmented('b', outer.b), inner: await fragmented('b', inner.b) },
    });
    const before = await counters();
    const r = await lab.exec('a', [...pingArgv(INNER.b, { count: 20, intervalS: 0.05, waitS: 2 }), '-M', 'do', '-s', String(1176 - 28)], { timeoutMs: 20_000 });
    t.equal(r.code, 0, `20 pings of 1176 bytes with DF set cross: ${r.stdout.trim().split('\n').slice(-2).join(' ')}`);
    t.match(r.stdout, /20 received/);
    const over = await lab.exec('a', [...pingArgv(INNER.b, { count: 1, waitS: 1 }), '-M', 'do', '-s', String(1176 - 28 + 8)], { timeoutMs: 5000 });
    t.not(over.code, 0, 'a larger one does not fit the inner TAP (the MTU is what limits)');
    const after = await counters();
    for (const h of ['a', 'b'] as const) {
      t.equal(after[h].ip.FragCreates! - before[h].ip.FragCreates!, 0, `no IP fragment created on ${h} (any interface)`);
      t.equal(after[h].ip.ReasmReqds! - before[h].ip.ReasmReqds!, 0, `no IP fragment received on ${h}`);
      t.equal(after[h].outer! - before[h].outer!, 0, `the outer overlay on ${h} sent no message in fragments`);
      t.equal(after[h].inner! - before[h].inner!, 0, `the inner overlay on ${h} sent no message in fragments`);
      t.comment(`${h} since start: IP FragCreates ${after[h].ip.FragCreates}, ReasmReqds ${after[h].ip.ReasmReqds}; overlay messages sent in fragments: outer ${after[h].outer}, inner ${after[h].inner}`);
    }
  });

  await t.test('the underlay carries neither inner addresses nor inner payload in plaintext', async (t) => {
    const pcaps = { underlay: join(lab.dir, 'eth0.pcap'), inner: join(lab.dir, 'tapinner.pcap') };
    const dumps = [lab.spawn('a', ['tcpdump', '-n', '-U', '-i', 'eth0', '-w', pcaps.underlay]), lab.spawn('a', ['tcpdump', '-n', '-U', '-i', 'tapinner', '-w', pcaps.inner])];
    t.teardown(() => Promise.all(dumps.map((d) => stopProcess(d))));
    await waitFor(() => dumps.every((d) => /listening on/.test(lab.output(d)) || d.exitCode !== null), 10_000, 'tcpdump listening');
    const r = await lab.exec('a', [...pingArgv(INNER.b, { count: 20, intervalS: 0.05, waitS: 2 }), '-s', '1000', '-p', PATTERN], { timeoutMs: 20_000 });
    t.equal(r.code, 0, 'patterned pings cross');
    await new Promise((r) => setTimeout(r, 500)); // the last packets reach the files
    await Promise.all(dumps.map((d) => stopProcess(d)));
    const [under, tap] = [readFileSync(pcaps.underlay), readFileSync(pcaps.inner)];
    const holds = (buf: Buffer, needles: Buffer[]) => needles.filter((n) => buf.includes(n)).length;
    // The same search finds them where they are plaintext: the inner TAP.
    t.ok(holds(tap, patternRotations(PATTERN)) > 0 && holds(tap, [ipBytes(INNER.a)]) === 1 && holds(tap, [ipBytes(INNER.b)]) === 1, 'the inner TAP capture holds pattern and addresses');
    t.ok(under.length > 20 * 1000, `the underlay capture holds the traffic (${under.length} bytes)`);
    t.equal(holds(under, patternRotations(PATTERN)), 0, 'no rotation of the payload pattern on the underlay');
    t.equal(holds(under, [ipBytes(INNER.a), ipBytes(INNER.b)]), 0, 'neither inner address on the underlay');
    // What the underlay carried is the outer overlay's: nothing to or from the inner overlay's port.
    const count = async (filter: string) => (await lab.exec('a', ['tcpdump', '-n', '-r', pcaps.underlay, filter])).stdout.trim().split('\n').filter(Boolean).length;
    const [outerPackets, innerPackets] = [await count('udp port 17000'), await count(`udp port ${INNER_PORT}`)];
    t.ok(outerPackets >= 20, `the outer overlay's packets (${outerPackets})`);
    t.equal(innerPackets, 0, 'none of the inner overlay\'s');
    t.comment(`underlay capture: ${under.length} bytes, ${outerPackets} outer overlay packets; inner TAP capture: ${tap.length} bytes`);
  });

  await t.test('stopping the outer on b cuts the inner path; restarting it restores it', async (t) => {
    const stop = await groupvpn(lab, 'b', ['stop', '-c', outer.b]);
    t.equal(stop.code, 0, stop.stdout + stop.stderr);
    const down = Date.now();
    t.notOk(await pingOnce('a', INNER.b), 'inner a → b fails');
    t.notOk(await pingOnce('a', OUTER.b), 'as does outer a → b');
    // b's inner overlay gives its link up (its sends fail without tapouter), so the inner
    // network must rejoin, not merely resume. Down for 15 s, b's attempts to reach its bootstrap
    // (a's outer address) have backed off to 4-8 s (up to 12 s with jitter): that must not delay the rejoin.
    const innerLinks = async (h: string, port: number) => ((await control(h, port, 'ConnectionTable.GetConnections')) as unknown[] | undefined)?.length;
    const lost = await waitFor(async () => (await innerLinks('b', 10001)) === 0, 40_000, 'b\'s inner links to close', 1000).then(() => true, () => false);
    t.ok(lost, `b's inner overlay closed its link to a after ${((Date.now() - down) / 1000).toFixed(1)} s`);
    await new Promise((r) => setTimeout(r, Math.max(0, down + OUTAGE_MS - Date.now())));
    const issued = Date.now();
    const again = await groupvpn(lab, 'b', ['start', '-c', outer.b]);
    t.equal(again.code, 0, again.stdout + again.stderr);
    const ready = Date.now();
    const back = await reachable('a', INNER.b, 30_000);
    const took = (Date.now() - ready) / 1000;
    t.ok(back, `inner a → b pings again ${took.toFixed(1)} s after the outer is ready (< 30 s)`);
    t.comment(`outer down on b for ${((issued - down) / 1000).toFixed(1)} s; restart: ready after ${((ready - issued) / 1000).toFixed(1)} s; inner pings ${took.toFixed(1)} s later`);
    t.ok(await reachable('b', INNER.a, 5000), 'and b → a');
  });

  await t.test('a second instance colliding with a running one is refused', async (t) => {
    // The inner config with tapouter: the outer's TAP, in the same namespace.
    const tap = hostConfig(lab.dir, 'clash-tap', { ...innerOpts, vip: '10.0.3.9', remoteTAs: [], device: 'tapouter', getStatePort: 5802, xmlRpcPort: 10002, overlayPort: 17002 });
    const r = await groupvpn(lab, 'a', ['start', '-c', tap]);
    t.equal(r.code, 1, 'same TAP: exit 1');
    t.equal(r.stderr, `groupvpn: TAP tapouter is already used by the instance running from ${outer.a} (pid ${(await status('a', outer.a))?.pid})\n`);
    const port = hostConfig(lab.dir, 'clash-port', { ...innerOpts, vip: '10.0.3.9', remoteTAs: [], device: 'tapthird', getStatePort: 5801, xmlRpcPort: 10002, overlayPort: 17002 });
    const p = await groupvpn(lab, 'a', ['start', '-c', port]);
    t.equal(p.code, 1, 'same get_state port: exit 1');
    t.match(p.stderr, new RegExp(`^groupvpn: get_state port 5801 is already used by the instance running from ${inner.a.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(pid \\d+\\)\\n$`));
    t.equal((await lab.exec('a', ['ip', 'link', 'show', 'tapthird'])).code, 1, 'no TAP was created');
    t.ok(await pingOnce('a', INNER.b), 'the running inner network is untouched');
  });

  // IPOP's own example: the inner network in switch mode, its TAP in a bridge that holds the
  // host's inner address. The bridge is no TUN/TAP, so only NetworkIgnoreList keeps the outer
  // overlay from advertising its address.
  const innerSwitch = { a: join(lab.dir, 'inner-sw-a.config'), b: join(lab.dir, 'inner-sw-b.config') };
  await t.test('the inner network in switch mode, bridged', async (t) => {
    for (const h of ['a', 'b'] as const) {
      const r = await groupvpn(lab, h, ['stop', '-c', inner[h]]);
      t.equal(r.code, 0, `router-mode inner stopped on ${h}: ${r.stdout}${r.stderr}`);
      for (const step of [['link', 'add', 'brinner', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0'], ['link', 'set', 'brinner', 'up']]) {
        const ipr = await lab.exec(h, ['ip', ...step]);
        t.equal(ipr.code, 0, `ip ${step.join(' ')} on ${h}: ${ipr.stderr}`);
      }
      writeFileSync(innerSwitch[h], readFileSync(inner[h], 'utf8').replace('<IpopNamespace>innerns<', '<IpopNamespace>innerswitch<')
        .replace(/<NodeAddress>[^<]*<\/NodeAddress>/, '').replace('</IpopConfig>', '<Mode>switch</Mode><Bridge>brinner</Bridge></IpopConfig>'));
    }
    for (const h of ['a', 'b'] as const) {
      const r = await groupvpn(lab, h, ['start', '-c', innerSwitch[h]]);
      t.equal(r.code, 0, `switch-mode inner start on ${h}: ${r.stdout}${r.stderr}`);
      if (r.code !== 0) return;
      t.match(r.stdout, /switch mode on tapinner in bridge brinner/);
      t.match((await lab.exec(h, ['ip', '-o', '-4', 'addr', 'show', 'dev', 'brinner'])).stdout, ` inet ${INNER[h]}/24 `, `the bridge on ${h} holds ${INNER[h]}`);
    }
    // b joined last: a learns of it at its next member refresh, or when b's frames arrive first.
    t.ok(await reachable('b', INNER.a), 'inner b → a across the switched network');
    t.ok(await reachable('a', INNER.b, 5000), 'inner a → b');
    const r = await lab.exec('a', [...pingArgv(INNER.b, { count: 5, intervalS: 0.1, waitS: 2 }), '-M', 'do', '-s', String(1176 - 28)], { timeoutMs: 15_000 });
    t.equal(r.code, 0, `full-size DF pings cross the bridge and both overlays: ${r.stdout.trim().split('\n').slice(-2).join(' ')}`);
    for (const h of ['a', 'b'] as const) {
      t.equal(await mtuOf(h, 'brinner'), 1176, `brinner on ${h} takes tapinner's MTU`);
      const o = await control(h, 10000, 'Information.Info') as { localips?: string[] } | undefined;
      t.same(o?.localips, [lab.ip(h)], `the outer overlay on ${h} does not advertise brinner's ${INNER[h]} (NetworkIgnoreList)`);
    }
  });

  await t.test('stop inner then outer everywhere', async (t) => {
    // Both hosts at once, each inner then outer; checked in host order.
    const hosts = ['a', 'b'] as const;
    const done = await Promise.all(hosts.map(async (h) => {
      const stops = [];
      for (const cfg of [innerSwitch[h], outer[h]]) stops.push(await groupvpn(lab, h, ['stop', '-c', cfg]));
      return { stops, tun: (await lab.exec(h, ['ip', '-o', 'link', 'show', 'type', 'tun'])).stdout };
    }));
    for (const [i, { stops, tun }] of done.entries()) {
      for (const r of stops) t.equal(r.code, 0, `${hosts[i]}: ${r.stdout}${r.stderr}`);
      t.equal(tun, '', `no TAP left on ${hosts[i]}`);
    }
  });
});
