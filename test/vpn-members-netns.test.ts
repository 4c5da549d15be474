// Issue 13's reproduction, in network namespaces (root): forged `ipop:<ns>:members` records,
// written with bput by an overlay node outside the VPN and by another VPN member, name someone
// else for B's IP. Nothing changes: A loses no ping to B over two member refreshes, and
// get_state lists only B for B's IP. A member that stops cleanly leaves A's list at A's next
// refresh. The members run with on-demand off, whose member refresh is every 5 s.
// Timing-sensitive (no ping lost at 0.2 s intervals): runs alone (tools/run-tests.sh).
import t from 'tap';
import { BIN, getState, groupvpn, hostConfig, startBootstrap } from '../bench/lab/ipop.js';
import { Lab, pingArgv, requireLab, waitFor } from '../bench/lab/netns.js';

const REFRESH_S = 5;

t.test('forged member records change nothing', async (t) => {
  if (!requireLab(t)) return;
  const lab = await Lab.create('memb', ['boot', 'a', 'b', 'c']);
  t.teardown(() => lab.destroy());
  const bootIp = lab.ip('boot');
  await startBootstrap(lab, 'boot', 8);
  const onDemand = { enabled: false };
  const cfg = {
    a: hostConfig(lab.dir, 'a', { bootIp, vip: '192.168.10.10', onDemand }),
    b: hostConfig(lab.dir, 'b', { bootIp, vip: '192.168.10.11', onDemand }),
    c: hostConfig(lab.dir, 'c', { bootIp, vip: '192.168.10.12', onDemand }),
  };
  const started = await Promise.all((['a', 'b', 'c'] as const).map((h) => groupvpn(lab, h, ['start', '-c', cfg[h]])));
  for (const [i, r] of started.entries()) t.equal(r.code, 0, `groupvpn start on ${'abc'[i]}: ${r.stdout}${r.stderr}`);
  if (started.some((r) => r.code !== 0)) return;
  t.teardown(() => Promise.all((['a', 'b', 'c'] as const).map((h) => groupvpn(lab, h, ['stop', '-c', cfg[h]]))));
  const uid = async (h: string) => (await getState(lab, h))?.local_state.uid;
  const [bUid, cUid] = [await uid('b'), await uid('c')];
  if (!t.ok(bUid && cUid, 'B and C answer get_state')) return;
  t.ok(await waitFor(async () => (await lab.exec('a', pingArgv('192.168.10.11', { count: 1, waitS: 1 }), { timeoutMs: 5000 })).code === 0, 20_000, 'A reaches B', 200).then(() => true, () => false), 'A reaches B');

  // The forgeries: from the bootstrap host (an overlay node, no VPN member) and from member C.
  const bput = (host: string, value: string) => lab.exec(host, [process.execPath, BIN.bput, 'ipop:labns:members', value], { timeoutMs: 20_000 });
  for (const [host, value] of [['boot', `${cUid} 192.168.10.11`], ['boot', `${bUid} 192.168.10.11 99999999999999 down`], ['c', `${cUid} 192.168.10.11`]] as const) {
    const r = await bput(host, value);
    t.equal(r.code, 0, `bput on ${host}: "${value}" stored (${r.stderr.trim()})`);
  }

  await t.test(`no ping from A to B is lost over two refreshes (${2 * REFRESH_S} s and more)`, async (t) => {
    const count = Math.ceil((2 * REFRESH_S + 3) / 0.2);
    const r = await lab.exec('a', pingArgv('192.168.10.11', { count, intervalS: 0.2, waitS: 2 }), { timeoutMs: (count * 0.2 + 15) * 1000 });
    const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(r.stdout);
    t.ok(m, `ping's summary: ${/^.*packets transmitted.*$/m.exec(r.stdout)?.[0] ?? r.stdout.slice(-300)}`);
    t.equal(Number(m?.[2]), count, `${m?.[2]} of ${count} replies`);
  });

  await t.test('get_state on A lists only B for .11, and C only for .12, throughout a refresh', async (t) => {
    const seen = { b: new Set<string>(), c: new Set<string>() };
    for (let i = 0; i <= REFRESH_S; i++) {
      const s = await getState(lab, 'a');
      seen.b.add(JSON.stringify(s?.peers.filter((p) => p.ip4 === '192.168.10.11').map((p) => p.uid)));
      seen.c.add(JSON.stringify(s?.peers.filter((p) => p.uid === cUid).map((p) => p.ip4)));
      await new Promise((r) => setTimeout(r, 1000));
    }
    t.same([...seen.b], [JSON.stringify([bUid])], 'only B for .11');
    t.same([...seen.c], [JSON.stringify(['192.168.10.12'])], 'C with its own IP only');
  });

  await t.test('a member that stops cleanly leaves the list at the next refresh', async (t) => {
    const r = await groupvpn(lab, 'c', ['stop', '-c', cfg.c]);
    t.equal(r.code, 0, r.stdout + r.stderr);
    const t0 = Date.now();
    const gone = await waitFor(async () => !(await getState(lab, 'a'))?.peers.some((p) => p.uid === cUid), (REFRESH_S + 5) * 1000, 'C gone', 250).then(() => true, () => false);
    t.ok(gone, `C left A's list after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });
});
