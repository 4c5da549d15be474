// `npm run demo:switch` (bench/lab/demo-switch.ts) exists and, without root, refuses in one
// clear line with exit 1 before touching anything. (As root the suite runs it as nobody, from a
// world-readable copy of the build: the clone may sit in a directory only root can enter.)
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ROOT } from './helpers/procs.js';
import { readableBuild } from './helpers/readable-build.js';

const SCRIPT = join(ROOT, 'dist/bench/lab/demo-switch.js');

t.test('package.json has demo:switch, running the compiled demo', async (t) => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  t.match(pkg.scripts['demo:switch'], /node dist\/bench\/lab\/demo-switch\.js$/);
  t.ok(existsSync(SCRIPT), 'compiled by npm run build');
});

t.test('without root: one line, exit 1', async (t) => {
  const root = process.getuid?.() === 0;
  const setpriv = spawnSync('/bin/sh', ['-c', 'command -v setpriv'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin' } }).stdout.trim();
  if (root && !setpriv) { t.fail('setpriv (util-linux) missing: tools/test-deps.sh installs it'); return; }
  const build = root ? readableBuild(ROOT, ['dist/bench']) : undefined;
  t.teardown(() => build?.remove());
  // env -u: tap's process-info hook puts its loader back into NODE_OPTIONS of every spawn, and as nobody it cannot write its records.
  const node = ['env', '-u', 'NODE_OPTIONS', '-u', 'BRUNET_NO_LAB', process.execPath, build ? join(build.dir, 'dist/bench/lab/demo-switch.js') : SCRIPT];
  const argv = root ? [setpriv, '--reuid=65534', '--regid=65534', '--clear-groups', ...node] : node;
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 1, `exit 1: ${r.stderr}`);
  t.equal(r.stdout, '', 'nothing built');
  t.match(r.stderr, /^demo:switch: the network-namespace lab needs root\n$/, 'one line saying why');
});
