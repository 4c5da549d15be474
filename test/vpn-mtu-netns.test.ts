// IpopConfig/MTU 0 for real: `groupvpn run` in a network namespace this test creates (root)
// derives the TAP's MTU from its underlay interface (here DevicesToBind: a veth of MTU 1300),
// logs how, and reports mode and underlay in its status.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { baseEnv, ipSync, requireLab, run, scratchNamespace, stopProcess, waitFor } from '../bench/lab/netns.js';
import { ROOT, tempDir } from './helpers/procs.js';

const PREFIX = 'mtutest';
const GROUPVPN = join(ROOT, 'dist/src/cli/groupvpn.js');

t.test('groupvpn run derives the TAP MTU from the underlay and reports it', async (t) => {
  if (!requireLab(t)) return;
  const { ns: NS, ip, destroy } = await scratchNamespace(PREFIX);
  t.teardown(destroy);
  ip('link', 'add', 'under0', 'mtu', '1300', 'type', 'veth', 'peer', 'name', 'under0p');
  ip('addr', 'add', '10.77.0.1/24', 'dev', 'under0');
  ip('link', 'set', 'under0', 'up');
  ip('link', 'set', 'under0p', 'up');

  const dir = tempDir(t);
  const cfg = join(dir, 'node.config');
  writeFileSync(cfg, `<NodeConfig><BrunetNamespace>mturealm</BrunetNamespace>
    <EdgeListeners><EdgeListener type="udp"><port>15300</port></EdgeListener></EdgeListeners>
    <DevicesToBind><Device>under0</Device></DevicesToBind>
    <XmlRpcManager><Enabled>false</Enabled></XmlRpcManager>
    <Security><GroupSecret>mtu secret</GroupSecret></Security>
    <IpopConfig><IpopNamespace>mtuns</IpopNamespace><VirtualNetworkDevice>tapmtu</VirtualNetworkDevice><GetStatePort>5830</GetStatePort>
      <AddressData><IPAddress>10.98.0.1</IPAddress><Netmask>24</Netmask></AddressData></IpopConfig></NodeConfig>`);
  const log = join(dir, 'run.log');
  writeFileSync(log, '');
  const fd = openSync(log, 'a');
  const child = spawn('ip', ['netns', 'exec', NS, process.execPath, GROUPVPN, 'run', '-c', cfg, '--state-dir', join(dir, 'state'), '--log-level', 'info'],
    { env: baseEnv({ BRUNET_TS_INSTANCES: join(dir, 'registry') }), detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  t.teardown(() => stopProcess(child));
  const output = () => readFileSync(log, 'utf8');
  await waitFor(() => /groupvpn ready/.test(output()) || child.exitCode !== null, 30_000, 'groupvpn ready').catch(() => {});
  t.match(output(), /groupvpn ready: 10\.98\.0\.1\/24 .*on tapmtu \(mtu 1136\)/, output());
  // (1300 - 157) = 1143, down to a multiple of 8.
  t.match(output(), /underlay under0 mtu 1300 \(DevicesToBind\) → TAP mtu 1136/);
  t.equal(ipSync(['-n', NS, 'link', 'show', 'tapmtu']).stdout.match(/mtu (\d+)/)?.[1], '1136', 'the TAP has it');

  const st = await run(['ip', 'netns', 'exec', NS, process.execPath, GROUPVPN, 'status', '-c', cfg, '--json'], { timeoutMs: 15_000 });
  t.equal(st.code, 0, st.stderr);
  const s = JSON.parse(st.stdout) as Record<string, unknown>;
  t.same([s.mode, s.underlay, s.mtu, s.device], ['router', 'under0', 1136, 'tapmtu']);
  const text = await run(['ip', 'netns', 'exec', NS, process.execPath, GROUPVPN, 'status', '-c', cfg], { timeoutMs: 15_000 });
  t.match(text.stdout, /namespace  mtuns   mode router   device tapmtu \(mtu 1136, offload on\)\nunderlay   under0\n/);

  // A second instance in the same namespace wanting the same TAP is refused while this one runs.
  const other = join(dir, 'other.config');
  writeFileSync(other, readFileSync(cfg, 'utf8').replace('15300', '15301').replace('5830', '5831'));
  const second = await run(['ip', 'netns', 'exec', NS, process.execPath, GROUPVPN, 'run', '-c', other, '--state-dir', join(dir, 'other.state')],
    { timeoutMs: 15_000, env: { BRUNET_TS_INSTANCES: join(dir, 'registry') } });
  t.equal(second.code, 1);
  t.equal(second.stderr, `groupvpn: TAP tapmtu is already used by the instance running from ${cfg} (pid ${s.pid})\n`);

  await stopProcess(child, 5000);
  t.equal(ipSync(['-n', NS, 'link', 'show', 'tapmtu']).code, 1, 'the TAP is gone');
  t.same(readdirSync(join(dir, 'registry')), [], 'the instance record is removed at stop');

  // A TAP that cannot be opened (the name is a veth's): the record and pid file go with the failure.
  ip('link', 'add', 'tapbusy', 'type', 'veth', 'peer', 'name', 'tapbusyp');
  writeFileSync(other, readFileSync(cfg, 'utf8').replace('tapmtu', 'tapbusy'));
  const busy = await run(['ip', 'netns', 'exec', NS, process.execPath, GROUPVPN, 'run', '-c', other, '--state-dir', join(dir, 'busy.state')],
    { timeoutMs: 15_000, env: { BRUNET_TS_INSTANCES: join(dir, 'registry') } });
  t.equal(busy.code, 1);
  t.match(busy.stderr, /\ngroupvpn: TUNSETIFF tapbusy: invalid argument \(is the name taken by a non-TAP interface\?\)\n$/);
  t.same(readdirSync(join(dir, 'registry')), [], 'no instance record left');
  t.same(readdirSync(join(dir, 'busy.state')), [], 'no pid file left');
});
