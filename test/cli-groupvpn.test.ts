// groupvpn's command line without a TAP: usage and config errors (exit 2), status and stop
// when nothing runs. The running VPN is tested in vpn-netns.test.ts.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ROOT, RUN, run, tempDir } from './helpers/procs.js';
import { freeUdpPort } from './helpers/ports.js';

const GROUPVPN = join(ROOT, 'dist/src/cli/groupvpn.js');

t.test('groupvpn command line', async (t) => {
  const dir = tempDir(t);
  const port = await freeUdpPort();
  const cfg = join(dir, 'node.config');
  writeFileSync(cfg, `<NodeConfig><BrunetNamespace>r</BrunetNamespace><IpopConfig><IpopNamespace>ns</IpopNamespace>
    <AddressData><IPAddress>10.5.0.2</IPAddress><Netmask>24</Netmask></AddressData><GetStatePort>${port}</GetStatePort></IpopConfig></NodeConfig>`);
  const plain = join(dir, 'plain.config');
  writeFileSync(plain, '<NodeConfig><BrunetNamespace>r</BrunetNamespace></NodeConfig>');
  const insecure = join(dir, 'insecure.config');
  writeFileSync(insecure, '<NodeConfig><BrunetNamespace>r</BrunetNamespace><Security><Enabled>false</Enabled></Security><IpopConfig><IpopNamespace>ns</IpopNamespace></IpopConfig></NodeConfig>');

  let r = await run(GROUPVPN, []);
  t.equal(r.code, 2);
  t.match(r.stderr, /usage: groupvpn start\|stop\|status\|run/);
  r = await run(GROUPVPN, ['frobnicate', '-c', cfg]);
  t.equal(r.code, 2, 'unknown command');
  r = await run(GROUPVPN, ['status', '-c', plain]);
  t.equal(r.code, 2);
  t.match(r.stderr, /has no <IpopConfig> section \(or give Brunet's ipop\.config with --ipop FILE\)/);
  r = await run(GROUPVPN, ['status', '-c', insecure]);
  t.equal(r.code, 2);
  t.match(r.stderr, /Security\/Enabled: the VPN needs security on/);
  r = await run(GROUPVPN, ['status', '-c', join(dir, 'nope.config')]);
  t.equal(r.code, 2);
  t.match(r.stderr, /cannot read .*nope\.config: no such file/);
  r = await run(GROUPVPN, ['start', '-c', cfg, '--timeout', 'soon']);
  t.equal(r.code, 2);
  t.match(r.stderr, /--timeout must be a positive number/);
  r = await run(GROUPVPN, ['status', '-c', cfg]);
  t.equal(r.code, 3, 'status when nothing runs: exit 3');
  t.match(r.stdout, new RegExp(`groupvpn is not running \\(nothing answers on 127\\.0\\.0\\.1:${port}\\)`));
  r = await run(GROUPVPN, ['stop', '-c', cfg]);
  t.equal(r.code, 3, 'stop when nothing runs: exit 3');
  t.match(r.stdout, /groupvpn is not running/);
  r = await run(GROUPVPN, ['stop', '-c', plain]);
  t.equal(r.code, 3, 'stop reads no config (this one has no IpopConfig)');
});

t.test('--log-level takes the same values as run_bootstrap_node, silent included', async (t) => {
  const dir = tempDir(t);
  const port = await freeUdpPort();
  const cfg = join(dir, 'node.config');
  writeFileSync(cfg, `<NodeConfig><BrunetNamespace>r</BrunetNamespace><IpopConfig><IpopNamespace>ns</IpopNamespace><GetStatePort>${port}</GetStatePort></IpopConfig></NodeConfig>`);
  for (const level of ['debug', 'info', 'warn', 'error', 'silent']) {
    // stop answers at once when nothing runs (status waits for a get_state reply).
    const r = await run(GROUPVPN, ['stop', '--state-dir', dir, '--log-level', level]);
    t.equal(r.code, 3, `--log-level ${level} accepted`);
  }
  const bad = await run(GROUPVPN, ['status', '-c', cfg, '--log-level', 'loud']);
  t.equal(bad.code, 2);
  t.equal(bad.stderr, 'groupvpn: --log-level must be one of debug, info, warn, error, silent\n');
  const other = await run(RUN, [cfg, '--log-level', 'loud']);
  t.equal(other.code, 2);
  t.equal(other.stderr, 'run_bootstrap_node: --log-level must be one of debug, info, warn, error, silent\n', 'the same list');
  const usage = await run(GROUPVPN, ['--help']);
  t.match(usage.stdout, /--log-level debug\|info\|warn\|error\|silent/);
});
