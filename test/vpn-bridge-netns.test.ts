// IpopConfig/Bridge for real, in a network namespace this test creates (root): a TAP opened by
// a node script inside the namespace joins a bridge, comes up, is warned about a port with a
// larger MTU, and leaves; a missing bridge or a non-bridge is refused, and `groupvpn run` says so
// in one line before it creates anything.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ipSync, requireLab, run, scratchNamespace } from '../bench/lab/netns.js';
import { ROOT, tempDir } from './helpers/procs.js';

const PREFIX = 'brtest';
const dist = (p: string) => JSON.stringify(`file://${join(ROOT, 'dist/src', p)}`);

const SCRIPT = `
import { existsSync, readFileSync } from 'node:fs';
import { attachToBridge, bridgeMtuWarnings, bridgePorts, bridgeProblem, detachFromBridge } from ${dist('vpn/bridge.js')};
import { TapDevice } from ${dist('vpn/tap.js')};
const out = {};
const err = (f) => { try { f(); return null; } catch (e) { return e.name + ': ' + e.message; } };
const isUp = (dev) => (Number(readFileSync('/sys/class/net/' + dev + '/flags', 'utf8')) & 1) === 1;
out.problems = [bridgeProblem('br0') ?? null, bridgeProblem('nobr'), bridgeProblem('plain0')];
out.attachMissing = err(() => attachToBridge('nobr', 'lo'));
out.attachNonBridge = err(() => attachToBridge('plain0', 'lo'));
const tap = TapDevice.open({ name: 'tapt', mtu: 1336 });
try {
  out.upBefore = isUp('tapt');
  out.attach = err(() => attachToBridge('br0', 'tapt'));
  out.portAfterAttach = existsSync('/sys/class/net/br0/brif/tapt');
  out.master = readFileSync('/sys/class/net/tapt/master/uevent', 'utf8').match(/INTERFACE=(\\S+)/)?.[1] ?? null;
  out.upAfter = isUp('tapt');
  out.ports = bridgePorts('br0');
  out.warnings = bridgeMtuWarnings('br0', 'tapt', 1336);
  out.attachGone = err(() => attachToBridge('br0', 'nosuchdev'));
  out.detach = err(() => detachFromBridge('br0', 'tapt'));
  out.portAfterDetach = existsSync('/sys/class/net/br0/brif/tapt');
  out.detachAgain = err(() => detachFromBridge('br0', 'tapt'));
} finally { tap.close(); }
process.stdout.write(JSON.stringify(out));
`;

t.test('a TAP joins a bridge and leaves it (network namespace)', async (t) => {
  if (!requireLab(t)) return;
  const { ns: NS, ip, destroy } = await scratchNamespace(PREFIX);
  t.teardown(destroy);
  ip('link', 'add', 'br0', 'type', 'bridge');
  ip('link', 'set', 'br0', 'up');
  // Two other ports: one with a larger MTU than the TAP's (warned), one with a smaller one.
  ip('link', 'add', 'veth1', 'mtu', '1500', 'type', 'veth', 'peer', 'name', 'veth1p');
  ip('link', 'add', 'veth2', 'mtu', '1300', 'type', 'veth', 'peer', 'name', 'veth2p');
  ip('link', 'set', 'veth1', 'master', 'br0');
  ip('link', 'set', 'veth2', 'master', 'br0');
  // An interface that is not a bridge.
  ip('link', 'add', 'plain0', 'type', 'veth', 'peer', 'name', 'plain0p');
  const dir = tempDir(t);
  const script = join(dir, 'bridge.mjs');
  writeFileSync(script, SCRIPT);

  const r = await run(['ip', 'netns', 'exec', NS, process.execPath, script], { timeoutMs: 20_000 });
  t.equal(r.code, 0, r.stderr);
  const o = JSON.parse(r.stdout) as Record<string, unknown>;
  t.same(o.problems, [null, 'bridge nobr does not exist (create it: ip link add nobr type bridge)',
    'plain0 is not a bridge (ip -d link show plain0 says what it is); name a bridge in IpopConfig/Bridge']);
  t.equal(o.attachMissing, 'BridgeError: bridge nobr does not exist (create it: ip link add nobr type bridge)');
  t.match(o.attachNonBridge, /^BridgeError: plain0 is not a bridge/);
  t.equal(o.upBefore, false, 'the TAP starts down');
  t.equal(o.attach, null, 'attached');
  t.equal(o.portAfterAttach, true, 'the TAP is a port of br0');
  t.equal(o.master, 'br0', 'its master is br0');
  t.equal(o.upAfter, true, 'and it is up');
  t.same(o.ports, ['tapt', 'veth1', 'veth2']);
  t.same(o.warnings, ['bridge br0: port veth1 has mtu 1500 > TAP mtu 1336: frames larger than 1336 from it are dropped; set its mtu to 1336'],
    'one warning, for the port with the larger MTU only');
  t.match(o.attachGone, /^BridgeError: cannot attach nosuchdev to bridge br0: SIOCBRADDIF br0 nosuchdev: no such device/);
  t.equal(o.detach, null);
  t.equal(o.portAfterDetach, false, 'detached');
  t.equal(o.detachAgain, null, 'detaching what is not a port is a no-op');
  t.equal(ipSync(['-n', NS, 'link', 'show', 'tapt']).code, 1, 'the TAP is gone once closed');

  // groupvpn run with a missing bridge: one line, exit 1, before a TAP exists.
  const cfg = join(dir, 'switch.config');
  writeFileSync(cfg, `<NodeConfig><BrunetNamespace>r</BrunetNamespace><XmlRpcManager><Enabled>false</Enabled></XmlRpcManager>
    <IpopConfig><IpopNamespace>ns</IpopNamespace><Mode>switch</Mode><VirtualNetworkDevice>tapsw</VirtualNetworkDevice><Bridge>nobr</Bridge><GetStatePort>0</GetStatePort></IpopConfig></NodeConfig>`);
  const g = await run(['ip', 'netns', 'exec', NS, process.execPath, join(ROOT, 'dist/src/cli/groupvpn.js'), 'run', '-c', cfg, '--state-dir', join(dir, 'state')],
    { timeoutMs: 20_000, env: { BRUNET_TS_INSTANCES: join(dir, 'registry') } });
  t.equal(g.code, 1, g.stderr);
  t.equal(g.stderr, 'groupvpn: bridge nobr does not exist (create it: ip link add nobr type bridge)\n');
  t.equal(ipSync(['-n', NS, 'link', 'show', 'tapsw']).code, 1, 'no TAP was created');
});
