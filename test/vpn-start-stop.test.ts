// `groupvpn start` and `stop` for real, in network namespaces (root, TAP): start goes past a
// stale pid file that names an unrelated process (which is left alone), stop needs only the
// state directory, and a start whose bootstrap is in another namespace says why it failed
// and leaves the config file as it was.
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { BIN, groupvpn, OVERLAY_PORT } from '../bench/lab/ipop.js';
import { Lab, requireLab } from '../bench/lab/netns.js';

const nodeConfig = (o: { realm: string; remote?: string; vip?: string }) => `<?xml version="1.0"?>
<NodeConfig>
  <BrunetNamespace>${o.realm}</BrunetNamespace>
  <EdgeListeners><EdgeListener type="udp"><port>${OVERLAY_PORT}</port></EdgeListener></EdgeListeners>
  ${o.remote ? `<RemoteTAs><Transport>brunet.udp://${o.remote}:${OVERLAY_PORT}</Transport></RemoteTAs>` : ''}
  <XmlRpcManager><Enabled>false</Enabled></XmlRpcManager>
  <Security><GroupSecret>start stop secret</GroupSecret></Security>
  ${o.vip ? `<IpopConfig><IpopNamespace>ssns</IpopNamespace><AddressData><IPAddress>${o.vip}</IPAddress><Netmask>24</Netmask></AddressData></IpopConfig>` : ''}
</NodeConfig>
`;
/** Running (a zombie, not yet reaped by whoever inherited the detached daemon, is not). */
const alive = (pid: number) => {
  try { return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
};

t.test('groupvpn start and stop in network namespaces', async (t) => {
  if (!requireLab(t)) return;
  const lab = await Lab.create('gvstartstop', ['a', 'b']);
  t.teardown(() => lab.destroy());

  await t.test('start goes past a stale pid file; stop needs only the state directory', async (t) => {
    const cfg = join(lab.dir, 'a.config'), state = join(lab.dir, 'a.state');
    writeFileSync(cfg, nodeConfig({ realm: 'ssrealm', vip: '10.99.0.1' }));
    const sleep = spawn('sleep', ['120'], { stdio: 'ignore' });
    t.teardown(() => { sleep.kill('SIGKILL'); });
    mkdirSync(state);
    writeFileSync(join(state, 'groupvpn.pid'), `${sleep.pid}\n`);

    const r = await groupvpn(lab, 'a', ['start', '-c', cfg, '--state-dir', state]);
    t.equal(r.code, 0, r.stdout + r.stderr);
    t.match(r.stdout, /removed a stale pid file: .*\ngroupvpn started \(pid \d+\): 10\.99\.0\.1 on tapipop/);
    t.ok(alive(sleep.pid!), 'the unrelated process was not touched');
    t.match(readFileSync(cfg, 'utf8'), /<NodeAddress>brunet:node:[A-Z2-7]{32}<\/NodeAddress>/, 'NodeAddress saved once the VPN was ready');
    const pid = Number(readFileSync(join(state, 'groupvpn.pid'), 'utf8').split('\n')[0]);
    t.ok(pid > 0 && pid !== sleep.pid, 'the pid file names the new instance');

    // Without -c: the default config does not exist here; the state directory is enough.
    const stop = await groupvpn(lab, 'a', ['stop', '--state-dir', state]);
    t.equal(stop.code, 0, stop.stdout + stop.stderr);
    t.equal(stop.stdout, `groupvpn stopped (pid ${pid}); tapipop removed\n`);
    t.notOk(alive(pid), 'the instance is gone');
    t.equal((await lab.exec('a', ['ip', 'link', 'show', 'tapipop'])).code, 1, 'its TAP too');
    t.ok(alive(sleep.pid!));
    const again = await groupvpn(lab, 'a', ['stop', '--state-dir', state]);
    t.equal(again.code, 3);
    t.equal(again.stdout, 'groupvpn is not running\n');
  });

  await t.test('a bootstrap in another Brunet namespace: start says so and leaves the config alone', async (t) => {
    const boot = join(lab.dir, 'boot.config');
    writeFileSync(boot, nodeConfig({ realm: 'otherrealm' }));
    const p = lab.spawn('b', [process.execPath, BIN.run, boot, '--log-level', 'warn']);
    const end = Date.now() + 30_000;
    while (!/started 1 node/.test(lab.output(p)) && p.exitCode === null && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    t.match(lab.output(p), /started 1 node/, 'the bootstrap runs');

    const cfg = join(lab.dir, 'c.config');
    const text = nodeConfig({ realm: 'ssrealm', remote: lab.ip('b'), vip: '10.99.0.2' });
    writeFileSync(cfg, text);
    const r = await groupvpn(lab, 'a', ['start', '-c', cfg, '--timeout', '6']);
    t.equal(r.code, 1, r.stdout + r.stderr);
    t.match(r.stderr, new RegExp(`did not join the ring within 6 s: secure handshake to brunet\\.udp://${lab.ip('b').replace(/\./g, '\\.')}:${OVERLAY_PORT} failed: .*different namespace`),
      'the cause, not only "are they running and reachable?"');
    t.notMatch(r.stderr, /are they running and reachable/);
    t.equal(readFileSync(cfg, 'utf8'), text, 'no NodeAddress written for a start that failed');
    t.equal((await lab.exec('a', ['ip', 'link', 'show', 'tapipop'])).code, 1, 'no TAP left behind');
  });
});
