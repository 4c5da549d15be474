// Several bootstrap nodes, one of them down (Brunet's tutorial runs several): three
// run_bootstrap_node processes on loopback, configured by bootstrap/bootstrap_demo_prepare.sh
// with all three IP:PORTs; the first is stopped, and a new node whose RemoteTAs list the
// stopped one first must still join and be routable within 10 s.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ControlClient } from '../src/control/client.js';
import { loadNodeConfig } from '../src/config/node-config.js';
import type { Connection } from '../src/connection/connection.js';
import type { LinkManager } from '../src/connection/link-manager.js';
import { LeafOverlord } from '../src/connection/overlord/leaf.js';
import type { ConnectionTable } from '../src/connection/table.js';
import { TransportAddress } from '../src/transport/ta.js';
import type { Clock } from '../src/util/clock.js';
import { silentLogger } from '../src/util/log.js';
import { seededRandom } from '../src/util/random.js';
import { freeTcpPort, freeUdpPort } from './helpers/ports.js';
import { crawlUntil, ROOT, startNodeProcess, tempDir, waitOutput, type Proc } from './helpers/procs.js';

const SCRIPT = join(ROOT, 'bootstrap/bootstrap_demo_prepare.sh');
const prepare = (cwd: string, ...args: string[]) => spawnSync('bash', [SCRIPT, ...args], { cwd, encoding: 'utf8', timeout: 10_000 });

t.test('bootstrap_demo_prepare.sh: several IP:PORTs', async (t) => {
  const d = tempDir(t);
  const ok = prepare(d, 'demo-ns', '10.1.2.3:40123', '[fd00::7]:40124', 'boot.example:40125');
  t.equal(ok.status, 0, ok.stderr);
  const c = loadNodeConfig(join(d, 'bootstrap.config'));
  t.equal(c.namespace, 'demo-ns');
  t.same(c.edgeListeners, [{ type: 'udp', port: 40123 }], 'listens on the first one\'s port');
  t.same(c.remoteTAs.map(String), ['brunet.udp://10.1.2.3:40123', 'brunet.udp://[fd00::7]:40124', 'brunet.udp://boot.example:40125'], 'lists all of them, in order');

  const one = prepare(d, 'demo-ns', '127.0.0.1:5000');
  t.equal(one.status, 0, one.stderr);
  t.same(loadNodeConfig(join(d, 'bootstrap.config')).remoteTAs.map(String), ['brunet.udp://127.0.0.1:5000'], 'a single IP:PORT');
  const old = prepare(d, 'demo-ns', '::1', '5001');
  t.equal(old.status, 0, old.stderr);
  t.same(loadNodeConfig(join(d, 'bootstrap.config')).remoteTAs.map(String), ['brunet.udp://[::1]:5001'], 'the NAMESPACE IP PORT form still works');

  const before = readFileSync(join(d, 'bootstrap.config'), 'utf8');
  for (const [args, why] of [
    [['ns', '1.2.3.4:5', '1.2.3.4:0'], /PORT must be an integer in 1\.\.65535, got '0'/],
    [['ns', '1.2.3.4:5', '300.1.1.1:6'], /invalid IP: '300\.1\.1\.1'/],
    [['ns', '1.2.3.4:5', ':6'], /expected IP:PORT/],
    [['ns', '1.2.3.4:5', '::1:6'], /expected IP:PORT \(\[IPv6\]:PORT\)/],
    [['ns', '[1.2.3.4]:5'], /invalid IP:PORT/],
    [['ns', '1.2.3.4:x', '1.2.3.4:5'], /got 'x'/],
    [['a b', '1.2.3.4:5', '1.2.3.4:6'], /invalid NAMESPACE/],
  ] as const) {
    const r = prepare(d, ...args);
    t.equal(r.status, 2, `exit 2 for ${JSON.stringify(args)}`);
    t.match(r.stderr, why);
    t.match(r.stderr, /bootstrap_demo_prepare\.sh NAMESPACE IP:PORT \[IP:PORT \.\.\.\]/);
  }
  t.equal(readFileSync(join(d, 'bootstrap.config'), 'utf8'), before, 'bad runs leave the file alone');
});

t.test('three bootstraps, the first stopped: a new node joins and is routable within 10 s', async (t) => {
  const dir = tempDir(t);
  const ports = [await freeUdpPort(), await freeUdpPort(), await freeUdpPort()];
  const [control, newControl] = [await freeTcpPort(), await freeTcpPort()];
  const tas = ports.map((p) => `127.0.0.1:${p}`);
  // Bootstrap i: its own IP:PORT first (its listening port), then the others; only bootstrap 1 serves the control API.
  const boots: Proc[] = [];
  for (const [i, p] of ports.entries()) {
    const d = join(dir, `boot${i}`);
    mkdirSync(d);
    const r = prepare(d, 'multins', ...tas.slice(i), ...tas.slice(0, i));
    t.equal(r.status, 0, `bootstrap ${i} configured: ${r.stderr}`);
    const cfg = join(d, 'bootstrap.config');
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('<Enabled>true</Enabled>', `<Enabled>${i === 1}</Enabled>`).replace('<Port>10000</Port>', `<Port>${control}</Port>`));
    t.equal(loadNodeConfig(cfg).edgeListeners[0]?.port, p);
    boots.push(startNodeProcess(t, [cfg]));
  }
  for (const [i, b] of boots.entries()) t.ok(await waitOutput(b, /first node brunet:node:/, 15_000), `bootstrap ${i} started: ${b.output()}`);
  const ring = await crawlUntil(control, 3, 30_000);
  t.equal(ring?.['Total Nodes'], 3, 'the three bootstraps form a ring');

  boots[0]!.child.kill('SIGTERM');
  t.equal(await boots[0]!.exited, 0, 'the first bootstrap stopped');

  // The new node lists the stopped bootstrap first.
  const cfg = join(dir, 'new.config');
  writeFileSync(cfg, `<?xml version="1.0"?>
<NodeConfig>
  <BrunetNamespace>multins</BrunetNamespace>
  <EdgeListeners><EdgeListener type="udp"><port>0</port></EdgeListener></EdgeListeners>
  <RemoteTAs>${tas.map((ta) => `<Transport>brunet.udp://${ta}</Transport>`).join('')}</RemoteTAs>
  <XmlRpcManager><Enabled>true</Enabled><Port>${newControl}</Port></XmlRpcManager>
</NodeConfig>
`);
  const t0 = Date.now();
  const node = startNodeProcess(t, [cfg]);
  t.ok(await waitOutput(node, /first node brunet:node:/, 10_000), 'the new node started');
  const addr = /first node (brunet:node:\S+)/.exec(node.output())?.[1] ?? '';

  // Routable: bootstrap 1 reaches it by an exact-mode routed Ping, and it reaches bootstrap 2.
  const b1 = new ControlClient(control);
  const mine = new ControlClient(newControl);
  t.teardown(() => { b1.close(); mine.close(); });
  const addr2 = /first node (brunet:node:\S+)/.exec(boots[2]!.output())?.[1] ?? '';
  const ping = async (from: ControlClient, to: string, token: string) => {
    const r = await from.proxy(to, 5, 1, 'sys:link.Ping', token).catch(() => undefined);
    return Array.isArray(r) && r[0] === token;
  };
  let reached = false;
  for (let k = 0; !reached && Date.now() - t0 < 10_000; k++) {
    reached = await ping(b1, addr, `b1>new#${k}`) && await ping(mine, addr2, `new>b2#${k}`);
    if (!reached) await new Promise((res) => setTimeout(res, 200));
  }
  const took = Date.now() - t0;
  t.ok(reached, `bootstrap 1 pings the new node, and the new node bootstrap 2, over the overlay ${took} ms after it started`);
  t.ok(took <= 10_000, 'within 10 s');
  const after = await crawlUntil(newControl, 3, 10_000);
  t.same([after?.['Total Nodes'], after?.Consistency], [3, 1], 'a consistent ring of the two running bootstraps and the new node');
});

t.test('the leaf overlord tries two bootstraps at once, so one that is down holds nothing up', async (t) => {
  const tas = ['brunet.udp://10.0.0.1:4000', 'brunet.udp://10.0.0.2:4000', 'brunet.udp://10.0.0.3:4000'].map((x) => TransportAddress.parse(x));
  const leaves: Connection[] = [];
  const calls: Array<{ ta: string; settle: (c: Connection | null) => void }> = [];
  const link = {
    connect: (target: { tas: TransportAddress[] }) => new Promise<Connection | null>((settle) => calls.push({ ta: target.tas[0]!.key, settle })),
    close: () => {},
  } as unknown as LinkManager;
  const table = { all: () => leaves } as unknown as ConnectionTable;
  let now = 0;
  const clock: Clock = { now: () => now, setTimeout: () => ({ cancel() {} }), setInterval: () => ({ cancel() {} }) };
  const leaf = new LeafOverlord(tas, table, link, () => false, clock, seededRandom(3), silentLogger);
  const tick = async () => { await new Promise((r) => setImmediate(r)); leaf.activate(now); };

  leaf.activate(now);
  t.equal(calls.length, 2, 'two bootstraps tried at once');
  t.not(calls[0]!.ta, calls[1]!.ta, 'two different ones');
  await tick();
  t.equal(calls.length, 2, 'no third attempt while two are pending');
  // The first one tried is down (its attempt ends only when the handshake times out); the other answers.
  const up = { type: 'leaf', createdAt: 0, initiator: true, relayHeld: () => false } as unknown as Connection;
  calls[1]!.settle(up);
  leaves.push(up);
  await tick();
  t.equal(calls.length, 2, 'one leaf up and one attempt pending: nothing more');
  calls[0]!.settle(null);
  await tick();
  t.equal(calls.length, 2, 'after a failure, a back-off before the next try');
  now += 60_000;
  await tick();
  t.equal(calls.length, 3, 'then a try for the second leaf');
  t.equal(calls[2]!.ta, tas.map((x) => x.key).find((k) => k !== calls[0]!.ta && k !== calls[1]!.ta), 'at the bootstrap not tried yet');
  t.end();
});

t.test('the leaf overlord starts its back-off over when our addresses change', async (t) => {
  const tas = [TransportAddress.parse('brunet.udp://192.168.1.1:17001')];
  const calls: Array<(c: Connection | null) => void> = [];
  const link = { connect: () => new Promise<Connection | null>((settle) => calls.push(settle)), close: () => {} } as unknown as LinkManager;
  const table = { all: () => [] } as unknown as ConnectionTable;
  let now = 0;
  const clock: Clock = { now: () => now, setTimeout: () => ({ cancel() {} }), setInterval: () => ({ cancel() {} }) };
  const leaf = new LeafOverlord(tas, table, link, () => false, clock, seededRandom(5), silentLogger);
  /** The latest attempt fails at `now`. */
  const fail = async () => { calls[calls.length - 1]!(null); await new Promise((r) => setImmediate(r)); };
  // The only bootstrap stays unreachable (the interface to it is gone): the back-off grows to its 30 s cap.
  for (let i = 1; i <= 8; i++) {
    leaf.activate(now);
    t.equal(calls.length, i, `attempt ${i}`);
    await fail();
    now += 60_000;
  }
  leaf.activate(now);
  await fail();
  now += 14_000;
  leaf.activate(now);
  t.equal(calls.length, 9, 'at the cap, no new attempt within 14 s of a failure');
  leaf.retryNow();
  leaf.activate(now);
  t.equal(calls.length, 10, 'once our addresses change, one at once');
  await fail();
  leaf.activate(now + 400);
  t.equal(calls.length, 10, 'the back-off starts over from 1 s: none within 0.4 s');
  leaf.activate(now + 1600);
  t.equal(calls.length, 11, 'one within 1.6 s');
  t.end();
});
