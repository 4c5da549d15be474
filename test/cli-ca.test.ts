// Group CA membership end to end: brunet-ca issues certificates, run_bootstrap_node
// processes with <Security><CACertificate> link only with members, and a revocation cuts a
// member off within seconds.
import t from 'tap';
import { join } from 'node:path';
import { loadOrCreateIdentity } from '../src/edge/identity.js';
import { freeTcpPort, freeUdpPort } from './helpers/ports.js';
import { CRAWL, crawlUntil, ROOT, run, RUN, startNodeProcess, tempDir, waitOutput, writeConfig } from './helpers/procs.js';

const CA = join(ROOT, 'dist/tools/brunet-ca.js');

t.test('only certified members link; a revoked member is cut off', async (t) => {
  const dir = tempDir(t);
  const caDir = join(dir, 'ca'), otherCa = join(dir, 'other-ca');
  t.equal((await run(CA, ['init', '--dir', caDir, '--name', 'test group'])).code, 0, 'CA created');
  t.equal((await run(CA, ['init', '--dir', otherCa, '--name', 'someone else'])).code, 0);
  const [udp, control] = [await freeUdpPort(), await freeTcpPort()];
  const security = (name: string) => `<Security><GroupSecret>s</GroupSecret><CACertificate>ca/ca.pub</CACertificate><Certificate>${name}.cert</Certificate><RevocationList>ca/revoked.list</RevocationList></Security>`;
  const cfg = {
    a: writeConfig(dir, 'a.config', { udp, remote: udp, control, security: security('a') }),
    b: writeConfig(dir, 'b.config', { udp: 0, remote: udp, security: security('b') }),
    c: writeConfig(dir, 'c.config', { udp: 0, remote: udp, security: security('c') }),
  };
  for (const [name, ca] of [['a', caDir], ['b', caDir], ['c', otherCa]] as const) {
    loadOrCreateIdentity(`${cfg[name]}.key`);
    const r = await run(CA, ['sign', '--dir', ca, '--key', `${cfg[name]}.key`, '--name', name, '--out', join(dir, `${name}.cert`)]);
    t.equal(r.code, 0, `certificate for ${name}: ${r.stderr}`);
  }
  // c's certificate is from another CA: its own check refuses to start with it.
  const bad = await run(RUN, [cfg.c]);
  t.equal(bad.code, 2, 'a node whose certificate is not from the configured CA does not start');
  t.match(bad.stderr, /Security\/Certificate/);

  const a = startNodeProcess(t, [cfg.a]);
  t.ok(await waitOutput(a, /control API http/, 15_000), 'member a up');
  const b = startNodeProcess(t, [cfg.b]);
  t.ok(await waitOutput(b, /started 1 node/, 15_000), 'member b up');
  t.equal((await crawlUntil(control, 2, 20_000))?.['Total Nodes'], 2, 'a and b linked');

  const revoked = await run(CA, ['revoke', '--dir', caDir, '--cert', join(dir, 'b.cert')]);
  t.equal(revoked.code, 0, 'b revoked');
  const t0 = Date.now();
  let total = 2;
  while (total !== 1 && Date.now() - t0 < 15_000) {
    const r = await run(CRAWL, ['--port', String(control), '--json']);
    if (r.code === 0) total = JSON.parse(r.stdout)['Total Nodes'];
    if (total !== 1) await new Promise((res) => setTimeout(res, 200));
  }
  t.equal(total, 1, `b cut off after ${Date.now() - t0} ms`);
  t.ok(Date.now() - t0 < 10_000, 'within seconds');
  await new Promise((res) => setTimeout(res, 3000));
  const r = await run(CRAWL, ['--port', String(control), '--json']);
  t.equal(JSON.parse(r.stdout)['Total Nodes'], 1, 'b stays out');
});

t.test('CA settings are validated', async (t) => {
  const dir = tempDir(t);
  const cfg = writeConfig(dir, 'x.config', { udp: 0, remote: 40000, security: '<Security><Certificate>x.cert</Certificate></Security>' });
  const r = await run(RUN, [cfg]);
  t.equal(r.code, 2);
  t.match(r.stderr, /Security\/Certificate: needs CACertificate/);
});
