// Several groupvpn instances on one host (nested VPNs, say): a second one may not take what a
// running one holds. The registry is a directory of per-instance records; a `sleep` stands in
// for a running instance, so no root and no TAP are needed.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseNodeConfig } from '../src/config/node-config.js';
import {
  checkCollisions, collision, currentNetns, holdingsOf, InstanceCollision, registerInstance, registryDir, runningInstances, type Holdings, type InstanceRecord,
} from '../src/cli/instances.js';
import { processStartTime } from '../src/cli/pid-file.js';
import { ROOT, run, tempDir } from './helpers/procs.js';

const GROUPVPN = join(ROOT, 'dist/src/cli/groupvpn.js');

const nodeConfig = (o: { tap?: string; getState?: number; udp?: number; tcp?: number; rpc?: number | 'off'; extra?: string }) => `<NodeConfig>
  <BrunetNamespace>r</BrunetNamespace>
  ${o.udp === undefined && o.tcp === undefined ? '' : `<EdgeListeners>${o.udp !== undefined ? `<EdgeListener type="udp"><port>${o.udp}</port></EdgeListener>` : ''}${o.tcp !== undefined ? `<EdgeListener type="tcp"><port>${o.tcp}</port></EdgeListener>` : ''}</EdgeListeners>`}
  <XmlRpcManager>${o.rpc === 'off' ? '<Enabled>false</Enabled>' : `<Enabled>true</Enabled><Port>${o.rpc ?? 10000}</Port>`}</XmlRpcManager>
  <IpopConfig><IpopNamespace>ns</IpopNamespace>${o.tap ? `<VirtualNetworkDevice>${o.tap}</VirtualNetworkDevice>` : ''}<GetStatePort>${o.getState ?? 5800}</GetStatePort>${o.extra ?? ''}</IpopConfig>
</NodeConfig>`;

const holdings = (o: Parameters<typeof nodeConfig>[0], stateDir = '/var/lib/a', netns = 'net:[1]', config = '/etc/ipop/a.config'): Holdings => {
  const cfg = parseNodeConfig(nodeConfig(o));
  return holdingsOf(cfg, cfg.ipop!, { config, stateDir, netns });
};
const running = (h: Holdings, pid = 1234): InstanceRecord => ({ pid, startTime: '1', cmdline: ['x'], ...h });

t.test('what an instance holds, from its config', async (t) => {
  t.same(holdings({ tap: 'tapout', getState: 5801, udp: 15000, tcp: 15001, rpc: 10001 }), {
    config: '/etc/ipop/a.config', stateDir: '/var/lib/a', netns: 'net:[1]', device: 'tapout', getStatePort: 5801,
    overlayPorts: ['udp/15000', 'tcp/15001'], xmlRpcPort: 10001,
  });
  const h = holdings({ udp: 0, rpc: 'off' });
  t.same([h.device, h.overlayPorts, h.xmlRpcPort], ['tapipop', [], 0], 'random ports and a disabled XmlRpc hold nothing');
  const cfg = parseNodeConfig(nodeConfig({}));
  t.equal(holdingsOf(cfg, cfg.ipop!, { config: 'a.config', ipopFile: 'ipop.config', stateDir: 'st' }).config, `${join(process.cwd(), 'a.config')} (with ${join(process.cwd(), 'ipop.config')})`);
  t.equal(holdingsOf(cfg, cfg.ipop!, { config: 'a', stateDir: 'st' }).netns, currentNetns());
  t.match(currentNetns(), /^net:\[\d+\]$/);
});

t.test('each shared resource is a collision, named in one line', async (t) => {
  const outer = running(holdings({ tap: 'tapipop', getState: 5800, udp: 15000, tcp: 15001, rpc: 10000 }, '/var/lib/outer', 'net:[1]', '/etc/ipop/outer.config'));
  const by = 'is already used by the instance running from /etc/ipop/outer.config (pid 1234)';
  const inner = { tap: 'tapin', getState: 5801, udp: 16000, tcp: 16001, rpc: 10001 };
  t.equal(collision(holdings(inner, '/var/lib/inner'), outer), undefined, 'an inner instance with its own TAP, ports and state: fine');
  t.equal(collision(holdings({ ...inner, tap: 'tapipop' }, '/var/lib/inner'), outer), `TAP tapipop ${by}`);
  t.equal(collision(holdings({ ...inner, getState: 5800 }, '/var/lib/inner'), outer), `get_state port 5800 ${by}`);
  t.equal(collision(holdings({ ...inner, udp: 15000 }, '/var/lib/inner'), outer), `overlay port udp/15000 ${by}`);
  t.equal(collision(holdings({ ...inner, tcp: 15001 }, '/var/lib/inner'), outer), `overlay port tcp/15001 ${by}`);
  t.equal(collision(holdings({ ...inner, udp: 15001, tcp: 15000 }, '/var/lib/inner'), outer), undefined, 'UDP and TCP ports of one number do not collide');
  t.equal(collision(holdings({ ...inner, rpc: 10000 }, '/var/lib/inner'), outer), `control (XmlRpc) port 10000 ${by}`);
  t.equal(collision(holdings({ ...inner, getState: 0 }, '/var/lib/inner'), running({ ...outer, getStatePort: 0 })), undefined, 'get_state off on both');
  t.equal(collision(holdings({ ...inner, rpc: 'off' }, '/var/lib/inner'), running({ ...outer, xmlRpcPort: 0 })), undefined, 'XmlRpc off on both');
  t.equal(collision(holdings(inner, '/var/lib/outer'), outer), `state directory /var/lib/outer ${by}`);
  // Switch mode: two members in one bridge would loop frames between their TAPs.
  const sw = running({ ...outer, bridge: 'br0' });
  t.equal(collision({ ...holdings(inner, '/var/lib/inner'), bridge: 'br0' }, sw), `bridge br0 (two switch members in one bridge would loop frames) ${by}`);
  t.equal(collision({ ...holdings(inner, '/var/lib/inner'), bridge: 'br1' }, sw), undefined, 'another bridge: fine');
  t.equal(collision(holdings(inner, '/var/lib/inner'), sw), undefined, 'router mode beside a switch member: fine');
  // Another network namespace has its own interfaces and ports; the file system is shared.
  t.equal(collision(holdings({ tap: 'tapipop', getState: 5800, udp: 15000, rpc: 10000 }, '/var/lib/b', 'net:[2]'), outer), undefined, 'same TAP and ports in another namespace: fine');
  t.equal(collision(holdings(inner, '/var/lib/outer', 'net:[2]'), outer), `state directory /var/lib/outer ${by}`, 'the state directory collides across namespaces');
});

/** A `sleep` recorded in `dir` as a running instance holding `h`. */
async function fakeInstance(t: { teardown(fn: () => void): void }, dir: string, h: Holdings): Promise<ChildProcess & { pid: number }> {
  const c = spawn('sleep', ['60'], { stdio: 'ignore' }) as ChildProcess & { pid: number };
  t.teardown(() => { c.kill('SIGKILL'); });
  await new Promise((r) => setTimeout(r, 100));
  const cmdline = readFileSync(`/proc/${c.pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  writeFileSync(join(dir, `${c.pid}.json`), JSON.stringify({ ...running(h, c.pid), startTime: processStartTime(c.pid), cmdline }));
  return c;
}

t.test('the registry: running records count, stale and unreadable ones are removed', async (t) => {
  const dir = tempDir(t);
  t.same(runningInstances(join(dir, 'missing')), [], 'no directory: nothing runs');
  const outer = holdings({ tap: 'tapipop', getState: 5800, udp: 15000 }, '/var/lib/outer', currentNetns(), '/etc/ipop/outer.config');
  const s = await fakeInstance(t, dir, outer);
  writeFileSync(join(dir, '999999.json'), JSON.stringify({ ...running(outer, 2 ** 22 + 1) }));
  writeFileSync(join(dir, 'junk.json'), '{');
  writeFileSync(join(dir, 'partial.json.tmp'), '{');
  t.same(runningInstances(dir).map((r) => r.pid), [s.pid]);
  t.same(readdirSync(dir).sort(), [`${s.pid}.json`, 'partial.json.tmp'].sort(), 'the dead and the unreadable records are gone');

  const clash = holdings({ tap: 'tapipop', getState: 5900, udp: 16000 }, '/var/lib/inner', currentNetns());
  t.throws(() => checkCollisions(clash, dir), new InstanceCollision(`TAP tapipop is already used by the instance running from /etc/ipop/outer.config (pid ${s.pid})`));
  t.throws(() => registerInstance(clash, dir), InstanceCollision);
  t.same(readdirSync(dir).filter((n) => n.endsWith('.json')), [`${s.pid}.json`], 'a refused instance leaves no record');
  t.doesNotThrow(() => checkCollisions(clash, dir, s.pid), 'an instance does not collide with itself');

  const ok = holdings({ tap: 'tapin', getState: 5900, udp: 16000, rpc: 10001 }, '/var/lib/inner', currentNetns(), '/etc/ipop/inner.config');
  const unregister = registerInstance(ok, dir);
  t.ok(existsSync(join(dir, `${process.pid}.json`)), 'this process is recorded');
  t.same(runningInstances(dir).map((r) => r.pid).sort(), [s.pid, process.pid].sort());
  t.throws(() => checkCollisions({ ...ok, stateDir: '/var/lib/third', device: 'tap3' }, dir, 1), /get_state port 5900 is already used by the instance running from \/etc\/ipop\/inner\.config \(pid \d+\)/);
  unregister();
  t.notOk(existsSync(join(dir, `${process.pid}.json`)), 'unregister removes the record');

  s.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 200));
  t.doesNotThrow(() => checkCollisions(clash, dir), 'once the outer instance is gone, its TAP is free');
  t.same(readdirSync(dir).filter((n) => n.endsWith('.json')), [], 'and its record was cleaned up');
});

t.test('registryDir: $BRUNET_TS_INSTANCES, else /run as root, else the temporary directory', async (t) => {
  t.equal(registryDir({ BRUNET_TS_INSTANCES: '/x/y' }), '/x/y');
  t.equal(registryDir({}), process.getuid?.() === 0 ? '/run/brunet-ts/instances' : join(tmpdir(), 'brunet-ts-instances'));
});

t.test('groupvpn start and run refuse a second instance with one line and exit 1', async (t) => {
  const dir = tempDir(t);
  const reg = join(dir, 'registry');
  const before = process.env['BRUNET_TS_INSTANCES'];
  process.env['BRUNET_TS_INSTANCES'] = reg;
  t.teardown(() => { if (before === undefined) delete process.env['BRUNET_TS_INSTANCES']; else process.env['BRUNET_TS_INSTANCES'] = before; });
  mkdirSync(reg);
  const outerCfg = join(dir, 'outer.config');
  writeFileSync(outerCfg, nodeConfig({ tap: 'tapipop', getState: 5800, udp: 15000 }));
  const cfg = parseNodeConfig(readFileSync(outerCfg, 'utf8'));
  const s = await fakeInstance(t, reg, holdingsOf(cfg, cfg.ipop!, { config: outerCfg, stateDir: join(dir, 'outer.state') }));

  const innerCfg = join(dir, 'inner.config');
  writeFileSync(innerCfg, nodeConfig({ tap: 'tapipop', getState: 5801, udp: 16000, rpc: 10001 }));
  for (const cmd of ['start', 'run']) {
    const r = await run(GROUPVPN, [cmd, '-c', innerCfg]);
    t.equal(r.code, 1, `${cmd}: ${r.stderr}`);
    t.equal(r.stderr, `groupvpn: TAP tapipop is already used by the instance running from ${outerCfg} (pid ${s.pid})\n`, cmd);
    t.equal(r.stdout, '');
  }
  writeFileSync(innerCfg, nodeConfig({ tap: 'tapin', getState: 5800, udp: 16000, rpc: 10001 }));
  const r = await run(GROUPVPN, ['start', '-c', innerCfg]);
  t.equal(r.stderr, `groupvpn: get_state port 5800 is already used by the instance running from ${outerCfg} (pid ${s.pid})\n`);
  t.notOk(existsSync(`${innerCfg}.data`), 'refused before anything was created');
});
