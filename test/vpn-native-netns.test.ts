// IpopConfig/NativeFlows through real TAPs (root): the native I/O thread against the
// TypeScript path (one member each), and between two native members: pings and TCP streams
// both ways, rekeying under traffic with flows installed (BRUNET_REKEY_PACKETS), and a flow
// removed and installed again when the peer restarts. Offload is off so that every TCP frame
// fits one datagram and crosses on the flows. The lab is removed afterwards, even on failure.
import t, { type Test } from 'tap';
import { BIN, groupvpn, hostConfig, startBootstrap } from '../bench/lab/ipop.js';
import { Lab, pingArgv, requireLab, waitFor } from '../bench/lab/netns.js';
import { tcpTransfer } from './helpers/transfer.js';

const VIP = { a: '192.168.31.10', b: '192.168.31.11' } as const;
type Host = 'a' | 'b';
interface Status { nativeFlows?: Record<string, number>; traffic?: Record<string, number> }

async function lab(t: Test, tag: string, native: Record<Host, boolean>, rekeyPackets?: number) {
  if (!requireLab(t, ['ping'])) return undefined;
  const l = await Lab.create(tag, ['boot', 'a', 'b']);
  t.teardown(() => l.destroy());
  await startBootstrap(l, 'boot', 4);
  const cfg = {
    a: hostConfig(l.dir, 'a', { bootIp: l.ip('boot'), vip: VIP.a, offload: false, nativeFlows: native.a }),
    b: hostConfig(l.dir, 'b', { bootIp: l.ip('boot'), vip: VIP.b, offload: false, nativeFlows: native.b }),
  };
  t.teardown(async () => { for (const h of ['a', 'b'] as const) await groupvpn(l, h, ['stop', '-c', cfg[h]]); });
  const env = rekeyPackets ? ['env', `BRUNET_REKEY_PACKETS=${rekeyPackets}`] : [];
  const start = (h: Host) => l.exec(h, [...env, process.execPath, BIN.groupvpn, 'start', '-c', cfg[h]], { timeoutMs: 90_000 });
  for (const h of ['a', 'b'] as const) {
    const r = await start(h);
    if (!t.equal(r.code, 0, `groupvpn start on ${h}: ${r.stdout}${r.stderr}`)) return undefined;
  }
  const status = async (h: Host) => JSON.parse((await groupvpn(l, h, ['status', '-c', cfg[h], '--json'])).stdout) as Status;
  const ping = async (from: Host, to: Host) => {
    await waitFor(async () => (await l.exec(from, pingArgv(VIP[to], { count: 1, waitS: 1 }), { timeoutMs: 5000 })).code === 0, 45_000, `ping ${from} → ${to}`, 200).catch(() => {});
    return (await l.exec(from, pingArgv(VIP[to], { count: 3, waitS: 2 }), { timeoutMs: 15_000 })).code;
  };
  /** Until a's (native) flow to b is installed, at most 10 s: flows are checked once a second. */
  const installed = async (h: Host) => {
    await waitFor(async () => ((await status(h)).nativeFlows?.installed ?? 0) > 0, 10_000, `${h}'s flow installed`, 250).catch(() => {});
    return (await status(h)).nativeFlows;
  };
  const transfer = async (from: Host, to: Host, mb: number) => {
    const x = await tcpTransfer(l, from, to, VIP[to], mb, 120_000);
    t.equal(x.code, 0, `${from} → ${to}: sender ok ${x.stderr}`);
    t.equal(x.receivedBytes, mb * 1024 * 1024, `${from} → ${to}: all ${mb} MB`);
    t.equal(x.receivedDigest, x.sentDigest, `${from} → ${to}: same SHA-256`);
  };
  return { l, cfg, start, status, ping, installed, transfer };
}

t.test('a NativeFlows member and a TypeScript member', async (t) => {
  const x = await lab(t, 'vnm', { a: true, b: false });
  if (!x) return;
  t.ok((await x.status('a')).nativeFlows, 'a runs the native path');
  t.equal((await x.status('b')).nativeFlows, undefined, 'b does not');
  t.equal(await x.ping('a', 'b'), 0, 'ping native → TypeScript');
  t.equal(await x.ping('b', 'a'), 0, 'ping TypeScript → native');
  const before = await x.installed('a');
  t.ok((before?.installed ?? 0) >= 1, `a installed a flow to b (${JSON.stringify(before)})`);
  await x.transfer('a', 'b', 20);
  await x.transfer('b', 'a', 20);
  t.equal(await x.ping('a', 'b'), 0, 'ping after the streams');
  const n = (await x.status('a')).nativeFlows!;
  t.ok(n.tapSealed > 10_000, `a sealed frames on its thread (${n.tapSealed})`);
  t.ok(n.tapWrites > 10_000, `a wrote frames to its TAP on its thread (${n.tapWrites})`);
  t.equal(n.decryptFailures + n.replays + n.badEpoch, 0, 'no refused packets');
  const tr = (await x.status('a')).traffic!;
  t.ok(tr.txFrames >= n.tapSealed && tr.rxFrames >= n.tapWrites - 100, `the flows' counters reach the path's stats (tx ${tr.txFrames}, rx ${tr.rxFrames})`);
});

t.test('two NativeFlows members: rekeying under traffic, and a peer restart', async (t) => {
  const x = await lab(t, 'vnn', { a: true, b: true }, 3000);
  if (!x) return;
  t.equal(await x.ping('a', 'b'), 0, 'ping a → b');
  t.equal(await x.ping('b', 'a'), 0, 'ping b → a');
  const a0 = await x.installed('a'), b0 = await x.installed('b');
  t.ok((a0?.installed ?? 0) >= 1 && (b0?.installed ?? 0) >= 1, 'both installed a flow');
  await x.transfer('a', 'b', 20);
  await x.transfer('b', 'a', 20);
  const [a1, b1] = [(await x.status('a')).nativeFlows!, (await x.status('b')).nativeFlows!];
  t.ok(a1.rekeys >= 3 && b1.rekeys >= 3, `the flows rekeyed under traffic (a ${a1.rekeys}, b ${b1.rekeys})`);
  t.equal(a1.decryptFailures + a1.replays + a1.badEpoch + b1.decryptFailures + b1.replays + b1.badEpoch, 0, 'no refused packets across the rekeys');
  t.ok(a1.tapSealed > 10_000 && b1.tapSealed > 10_000, `both sealed on their threads (a ${a1.tapSealed}, b ${b1.tapSealed})`);
  t.equal(await x.ping('a', 'b'), 0, 'ping after the rekeys');

  // b restarts: a's flow over the old edge goes, traffic resumes (on TypeScript, then on a new flow).
  const stop = await groupvpn(x.l, 'b', ['stop', '-c', x.cfg.b]);
  t.equal(stop.code, 0, 'b stopped');
  const r = await x.start('b');
  if (!t.equal(r.code, 0, `b restarted: ${r.stdout}${r.stderr}`)) return;
  t.equal(await x.ping('a', 'b'), 0, 'ping a → restarted b');
  t.equal(await x.ping('b', 'a'), 0, 'ping restarted b → a');
  await waitFor(async () => { const n = (await x.status('a')).nativeFlows!; return n.removals >= 1 && n.installed >= 1; }, 20_000, 'a flow again', 250).catch(() => {});
  const a2 = (await x.status('a')).nativeFlows!;
  t.ok(a2.removals >= 1, `a removed the flow over b's old edge (${a2.removals})`);
  t.ok(a2.installed >= 1 && a2.installs >= 2, `and installed one over the new edge (installs ${a2.installs})`);
  await x.transfer('a', 'b', 5);
});
