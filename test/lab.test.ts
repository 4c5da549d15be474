// The network-namespace lab itself: two hosts reach each other over the bridge, processes
// started in it are stopped, and destroy() leaves no namespace behind.
import t from 'tap';
import { Lab, pingArgv, pingTimes, requireLab, run, waitFor } from '../bench/lab/netns.js';

const namespaces = async () => (await run(['ip', 'netns', 'list'])).stdout;

t.test('a two-host lab pings and is removed', async (t) => {
  if (!requireLab(t, ['ping'])) return;
  const lab = await Lab.create('labtest', ['a', 'b']);
  t.teardown(() => lab.destroy());
  t.equal(lab.ip('a'), '10.144.0.1');
  t.equal(lab.ip('b'), '10.144.0.2');
  const names = [lab.switchNs, lab.ns('a'), lab.ns('b')];
  const before = await namespaces();
  for (const n of names) t.match(before, n, `namespace ${n} exists`);

  const ping = await lab.exec('a', pingArgv(lab.ip('b'), { count: 2 }), { timeoutMs: 10_000 });
  t.equal(ping.code, 0, `a pings b: ${ping.stderr}`);
  t.equal(pingTimes(ping.stdout).length, 2, 'two replies');
  const ifs = await lab.exec('b', ['ip', '-o', 'addr', 'show', 'dev', 'eth0']);
  t.match(ifs.stdout, '10.144.0.2/24', 'b has its underlay address');

  const sleeper = lab.spawn('b', ['sleep', '600']);
  await waitFor(() => sleeper.pid !== undefined, 2000, 'sleep to start');

  await lab.destroy();
  await lab.destroy(); // idempotent
  t.ok(sleeper.exitCode !== null || sleeper.signalCode !== null, 'spawned process stopped');
  const after = await namespaces();
  for (const n of names) t.notMatch(after, n, `namespace ${n} is gone`);
});
