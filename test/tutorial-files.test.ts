// The tutorial run (bootstrap_demo_prepare.sh, then run_bootstrap_node bootstrap.config) leaves a
// private key and a DHT store beside the config: `git add .` in the work tree must not pick them up.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { freeTcpPort, freeUdpPort } from './helpers/ports.js';
import { ROOT, startNodeProcess, tempDir, waitOutput } from './helpers/procs.js';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

t.test('every file a tutorial run leaves is ignored by git, at the top and in config/', async (t) => {
  const dir = tempDir(t);
  const [udp, control] = [await freeUdpPort(), await freeTcpPort()];
  execFileSync('bash', [join(ROOT, 'bootstrap/bootstrap_demo_prepare.sh'), 'TutorialNs', '127.0.0.1', String(udp)], { cwd: dir, stdio: 'ignore', timeout: 10_000 });
  const cfg = join(dir, 'bootstrap.config');
  writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('<Port>10000</Port>', `<Port>${control}</Port>`));
  const p = startNodeProcess(t, [cfg, '--nodes', '2']);
  t.ok(await waitOutput(p, /control API http/, 15_000), 'the tutorial node runs');
  p.child.kill('SIGINT');
  const code = await Promise.race([p.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000))]);
  t.equal(code, 0, 'and stops cleanly');

  const left = files(dir).map((f) => relative(dir, f)).filter((f) => f !== 'bootstrap.config');
  t.ok(left.includes('bootstrap.config.key'), 'the run wrote the private key');
  t.ok(left.some((f) => f.startsWith('bootstrap.config.data/')), 'and the DHT store');
  for (const f of left) {
    for (const at of [f, `config/${f.replace('bootstrap.config', 'node.config.xml')}`]) {
      let ignored = true;
      try { execFileSync('git', ['-C', ROOT, 'check-ignore', '-q', '--no-index', at], { stdio: 'ignore', timeout: 10_000 }); } catch { ignored = false; }
      t.ok(ignored, `${at} is ignored`);
    }
  }
});
