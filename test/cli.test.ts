// The command-line tools end to end: run_bootstrap_node processes on loopback, crawl's
// output, bad configs, shutdown, a ring spread over processes, and crash recovery.
import t from 'tap';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freeTcpPort, freeUdpPort } from './helpers/ports.js';
import { CRAWL, crawlUntil, RUN, run, startNodeProcess, tempDir, waitOutput, writeConfig } from './helpers/procs.js';

const CRAWL_KEYS = ['Total Nodes', 'Consistent Nodes', 'Consistency', 'Connections', 'SecurityAssociations', 'WrappedEdges',
  'Edges', 'RelayEdges', 'SubringEdges', 'TcpEdges', 'UdpEdges', 'Crawl took'];

t.test('bad configurations: one clear line, exit 2, no stack trace', async (t) => {
  const dir = tempDir(t);
  const missing = await run(RUN, [join(dir, 'nope.config')]);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /^run_bootstrap_node: .*nope\.config/);
  t.equal(missing.stderr.trim().split('\n').length, 1, 'one line');
  t.notMatch(missing.stderr, /\n\s+at /, 'no stack trace');
  const bad = join(dir, 'bad.config');
  writeFileSync(bad, '<NodeConfig><BrunetNamespace>x</BrunetNamespace><RemoteTAs><Transport>brunet.udp://1.2.3.4:99999</Transport></RemoteTAs></NodeConfig>');
  const r = await run(RUN, [bad]);
  t.equal(r.code, 2);
  t.match(r.stderr, /Transport.*port/);
  t.equal(r.stderr.trim().split('\n').length, 1);
  const usage = await run(RUN, []);
  t.equal(usage.code, 2);
  t.match(usage.stderr, /usage: run_bootstrap_node/);
});

t.test('crawl with no node answering exits 3 (nothing running) with a message', async (t) => {
  const port = await freeTcpPort();
  const r = await run(CRAWL, ['--port', String(port)]);
  t.equal(r.code, 3);
  t.match(r.stderr, /crawl: no node answered/);
});

t.test('3 processes of 8 nodes form one ring of 24; crawl prints every statistic', async (t) => {
  const dir = tempDir(t);
  const [udp, control] = [await freeUdpPort(), await freeTcpPort()];
  const first = writeConfig(dir, 'bootstrap.config', { udp, remote: udp, control });
  const p1 = startNodeProcess(t, [first, '--nodes', '8']);
  t.ok(await waitOutput(p1, /control API http/, 10_000), 'first process up');
  for (const name of ['b.config', 'c.config']) {
    const cfg = writeConfig(dir, name, { udp: 0, remote: udp });
    const p = startNodeProcess(t, [cfg, '--nodes', '8']);
    t.ok(await waitOutput(p, /started 8 nodes/, 10_000), `${name} process up`);
  }
  const stats = await crawlUntil(control, 24, 60_000);
  t.equal(stats?.['Total Nodes'], 24, 'crawl finds 24 nodes');
  t.equal(stats?.Consistency, 1, 'consistency 1.0');
  t.equal(stats?.['Consistent Nodes'], 24);

  const text = await run(CRAWL, ['--port', String(control)]);
  t.equal(text.code, 0);
  const lines = text.stdout.trim().split('\n');
  t.same(lines.map((l) => l.split(':')[0]), CRAWL_KEYS, 'exactly the Brunet statistics, in order');
  const parsed = Object.fromEntries(lines.map((l) => { const [k, v] = l.split(': '); return [k, Number(v)]; }));
  t.equal(parsed['Total Nodes'], 24);
  t.ok(parsed.UdpEdges > 0 && parsed.Edges >= parsed.UdpEdges);
  t.equal(parsed.TcpEdges, 0);
  t.ok(parsed.SecurityAssociations > 0 && parsed.WrappedEdges >= parsed.SecurityAssociations, 'secure edges by default');

  // The first node's address was generated and written back into its config.
  t.match(readFileSync(first, 'utf8'), /<NodeAddress>brunet:node:[A-Z2-7]{32}<\/NodeAddress>/);
});

t.test('4 of 24 nodes killed: the ring heals to consistency 1.0', async (t) => {
  const dir = tempDir(t);
  const [udp, control] = [await freeUdpPort(), await freeTcpPort()];
  const timeout = ['--link-timeout', '3000'];
  const first = writeConfig(dir, 'boot.config', { udp, remote: udp, control });
  const p1 = startNodeProcess(t, [first, '--nodes', '4', ...timeout]);
  t.ok(await waitOutput(p1, /control API http/, 10_000));
  const others = [];
  for (let i = 0; i < 5; i++) {
    const p = startNodeProcess(t, [writeConfig(dir, `n${i}.config`, { udp: 0, remote: udp }), '--nodes', '4', ...timeout]);
    t.ok(await waitOutput(p, /started 4 nodes/, 10_000));
    others.push(p);
  }
  const before = await crawlUntil(control, 24, 60_000);
  t.equal(before?.Consistency, 1, 'ring of 24 formed');
  others[2]!.child.kill('SIGKILL');
  await others[2]!.exited;
  const after = await crawlUntil(control, 20, 60_000);
  t.equal(after?.['Total Nodes'], 20, '20 survivors found');
  t.equal(after?.Consistency, 1, 'consistency back to 1.0');
});

t.test('SIGTERM: clean leave within 2 s, address kept across a restart', async (t) => {
  const dir = tempDir(t);
  const [udp, control] = [await freeUdpPort(), await freeTcpPort()];
  const cfg = writeConfig(dir, 'one.config', { udp, remote: udp, control });
  const p = startNodeProcess(t, [cfg, '--nodes', '3']);
  t.ok(await waitOutput(p, /control API http/, 10_000));
  const addr = /first node (brunet:node:\S+)/.exec(p.output())?.[1];
  t.ok(addr, 'first node address printed');
  const t0 = Date.now();
  p.child.kill('SIGTERM');
  const code = await p.exited;
  t.equal(code, 0, 'exit code 0');
  t.ok(Date.now() - t0 < 2000, `exited in ${Date.now() - t0} ms`);
  const p2 = startNodeProcess(t, [cfg]);
  t.ok(await waitOutput(p2, /control API http/, 10_000), 'restarted on the same ports (sockets were released)');
  t.match(p2.output(), new RegExp(`first node ${addr}`), 'same address after restart');
  p2.child.kill('SIGINT');
  t.equal(await p2.exited, 0);
});

t.test('security: only holders of the group secret join; Enabled false turns it off', async (t) => {
  const dir = tempDir(t);
  const [udp, control] = [await freeUdpPort(), await freeTcpPort()];
  const member = '<Security><GroupSecret>the right secret</GroupSecret></Security>';
  const first = writeConfig(dir, 'm1.config', { udp, remote: udp, control, security: member });
  const p1 = startNodeProcess(t, [first, '--nodes', '4']);
  t.ok(await waitOutput(p1, /control API http/, 15_000));
  const p2 = startNodeProcess(t, [writeConfig(dir, 'm2.config', { udp: 0, remote: udp, security: member }), '--nodes', '4']);
  t.ok(await waitOutput(p2, /started 4 nodes/, 15_000));
  const outsider = startNodeProcess(t, [writeConfig(dir, 'x.config', { udp: 0, remote: udp, security: '<Security><GroupSecret>a wrong guess</GroupSecret></Security>' }), '--nodes', '2', '--log-level', 'info']);
  t.ok(await waitOutput(outsider, /started 2 nodes/, 15_000));
  const stats = await crawlUntil(control, 8, 30_000);
  t.equal(stats?.['Total Nodes'], 8, 'the 8 members form the ring');
  await new Promise((r) => setTimeout(r, 3000));
  const again = await crawlUntil(control, 8, 10_000);
  t.equal(again?.['Total Nodes'], 8, 'the outsider never got in');
  t.match(outsider.output(), /authentication failed|refused/i, 'the outsider logs why');
  const key = readFileSync(first + '.key');
  t.ok(key.length > 0, 'key file created beside the config');
  t.equal(statSync(first + '.key').mode & 0o777, 0o600, 'key file mode 0600');

  const [udp2, control2] = [await freeUdpPort(), await freeTcpPort()];
  const plain = writeConfig(dir, 'plain.config', { udp: udp2, remote: udp2, control: control2, security: '<Security><Enabled>false</Enabled></Security>' });
  const p3 = startNodeProcess(t, [plain, '--nodes', '4']);
  t.ok(await waitOutput(p3, /control API http/, 15_000));
  const off = await crawlUntil(control2, 4, 30_000);
  t.equal(off?.SecurityAssociations, 0, 'security off: no security associations');
  t.equal(off?.WrappedEdges, 0);
});
