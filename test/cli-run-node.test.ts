// run_bootstrap_node as a process: a start that fails leaves the config file as it was
// (NodeAddress is written only once the nodes are up), and a clean shutdown prints no
// handshake failures (pending handshakes fail by design while leaving).
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { freeTcpPort, freeUdpPort } from './helpers/ports.js';
import { RUN, run, startNodeProcess, tempDir, waitOutput } from './helpers/procs.js';

const config = (udp: number, remote: number, control?: number) => `<?xml version="1.0"?>
<NodeConfig>
  <BrunetNamespace>clirun</BrunetNamespace>
  <EdgeListeners><EdgeListener type="udp"><port>${udp}</port></EdgeListener></EdgeListeners>
  <RemoteTAs><Transport>brunet.udp://127.0.0.1:${remote}</Transport></RemoteTAs>
  <XmlRpcManager><Enabled>${control ? 'true' : 'false'}</Enabled><Port>${control ?? 10000}</Port></XmlRpcManager>
  <Security><GroupSecret>s</GroupSecret></Security>
</NodeConfig>
`;

t.test('NodeAddress is written only after the nodes are up', async (t) => {
  const dir = tempDir(t);
  const cfg = join(dir, 'node.config');
  const [udp, control] = [await freeUdpPort(), await freeTcpPort()];
  // The control API's port is taken: the start fails after the nodes started, at the last step.
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(control, '127.0.0.1', r));
  t.teardown(() => { blocker.close(); });
  const text = config(udp, udp, control);
  writeFileSync(cfg, text);
  const failed = await run(RUN, [cfg, '--bind', '127.0.0.1', '--log-level', 'warn']);
  t.equal(failed.code, 1, failed.stderr);
  t.match(failed.stderr, /control API port \d+: address already in use/);
  t.equal(readFileSync(cfg, 'utf8'), text, 'the config file is unchanged');

  blocker.close();
  const p = startNodeProcess(t, [cfg, '--log-level', 'info']);
  t.ok(await waitOutput(p, /control API http/, 30_000), p.output());
  const saved = /<NodeAddress>(brunet:node:[A-Z2-7]{32})<\/NodeAddress>/.exec(readFileSync(cfg, 'utf8'));
  t.ok(saved, 'written once up');
  t.match(p.output(), new RegExp(`first node ${saved?.[1]}`), 'the address of the running node');
  p.child.kill('SIGINT');
  t.equal(await p.exited, 0);
});

t.test('a clean shutdown prints no handshake failures', async (t) => {
  const dir = tempDir(t);
  // A bootstrap that never answers: the node's handshake to it is still pending (4.5 s) when it stops.
  const silent = createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
  t.teardown(() => silent.close());
  const port = silent.address().port;
  for (const level of ['info', 'debug']) {
    const cfg = join(dir, `${level}.config`);
    writeFileSync(cfg, config(0, port));
    const p = startNodeProcess(t, [cfg, '--log-level', level]);
    t.ok(await waitOutput(p, /control API disabled/, 30_000), p.output());
    // The first hello has been sent (the node starts linking to its bootstrap at once).
    const heard = await new Promise<boolean>((r) => { const to = setTimeout(() => r(false), 3000); silent.once('message', () => { clearTimeout(to); r(true); }); });
    t.ok(heard, 'the handshake to the bootstrap is under way');
    p.child.kill('SIGINT');
    t.equal(await p.exited, 0, 'exit 0');
    const after = p.output().split(/\n/).slice(p.output().split(/\n/).findIndex((l) => /SIGINT: leaving the overlay/.test(l)) + 1);
    t.same(after.filter((l) => / (INFO|WARN|ERROR) /.test(l)), [], `--log-level ${level}: nothing but debug lines after SIGINT`);
    if (level === 'debug') t.match(after.join('\n'), /DEBUG secure handshake to brunet\.udp:\/\/127\.0\.0\.1:\d+ failed: closed locally: listener stopped/, 'the failure is still there at debug level');
  }
});
