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

t.test('namespaces attached to a host\'s bridge (containers) reach each other and are removed', async (t) => {
  if (!requireLab(t, ['ping'])) return;
  const lab = await Lab.create('labtest', ['h']);
  t.teardown(() => lab.destroy());
  t.equal((await lab.exec('h', ['ip', 'link', 'add', 'br1', 'type', 'bridge'])).code, 0);
  t.equal((await lab.exec('h', ['ip', 'link', 'set', 'br1', 'up'])).code, 0);
  for (const [name, ip] of [['c1', '10.9.0.1'], ['c2', '10.9.0.2']] as const) {
    await lab.attach(name, 'h', 'br1', `v${name}`);
    t.equal((await lab.exec(name, ['ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth0'])).code, 0, `${name} has ${ip}`);
  }
  const ports = await lab.exec('h', ['ip', '-o', 'link', 'show', 'master', 'br1']);
  t.match(ports.stdout, /vc1@.*vc2@/s, 'both veth peers are ports of br1');
  const ping = await lab.exec('c1', pingArgv('10.9.0.2', { count: 2 }), { timeoutMs: 10_000 });
  t.equal(ping.code, 0, `c1 pings c2 across h's bridge: ${ping.stderr}`);
  await t.rejects(lab.attach('h', 'h', 'br1', 'vx'), /bad or duplicate namespace name/, 'a host name cannot be reused');
  const names = [lab.ns('h'), lab.ns('c1'), lab.ns('c2')];
  await lab.destroy();
  const after = await namespaces();
  for (const n of names) t.notMatch(after, n, `namespace ${n} is gone`);
});
