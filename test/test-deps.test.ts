// tools/test-deps.sh, which npm's pretest and .ci/run call to install the suite's Debian
// packages: exercised with a PATH that hides the tools (only bash, env and id on it, plus the
// sbin directories the script adds), in dry-run mode, as an unprivileged user, and as "root"
// with a stand-in apt-get, so that it never installs anything here.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tempDir } from './helpers/procs.js';

const SCRIPT = join(ROOT, 'tools/test-deps.sh');
const BASH = '/bin/bash';

/** The absolute path of a command on this process's PATH. */
const where = (c: string) => spawnSync(BASH, ['-c', `command -v ${c}`], { encoding: 'utf8' }).stdout.trim();

/** A directory with only bash, env and id, to stand for a PATH without the suite's tools. */
function barePath(dir: string): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  for (const c of ['bash', 'env', 'id']) symlinkSync(where(c), join(bin, c));
  return bin;
}

const runScript = (args: string[], env: NodeJS.ProcessEnv, prefix: string[] = [], script = SCRIPT) =>
  spawnSync(prefix[0] ?? BASH, [...prefix.slice(1), ...(prefix.length ? [BASH] : []), script, ...args], { encoding: 'utf8', timeout: 20_000, env });

t.test('dry run: names the missing commands and the one apt-get line', async (t) => {
  const bin = barePath(tempDir(t));
  const r = runScript(['--dry-run'], { PATH: bin });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^test-deps: missing .*\bping\b.*; would run: apt-get install -y --no-install-recommends .*\biputils-ping\b/);
  t.match(r.stdout, /\bpython3\b.*apt-get install .*\bpython3\b/, 'python3 for the XML-RPC interop tests');
  t.match(r.stdout, /\bchromium\b.*apt-get install .*\bchromium\b/, 'chromium for the web view\'s browser test');
  const noLab = runScript(['--dry-run'], { PATH: bin, BRUNET_NO_LAB: '1' });
  t.equal(noLab.status, 0);
  t.equal(noLab.stdout.trim(), 'test-deps: missing python3 chromium; would run: apt-get install -y --no-install-recommends python3 chromium', 'BRUNET_NO_LAB leaves the lab\'s packages out');
});

t.test('with the suite\'s own PATH (pretest ran it), nothing is missing', async (t) => {
  const r = runScript(['--dry-run'], process.env);
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout, '', 'nothing to install');
});

t.test('not root: prints the apt-get line and fails', async (t) => {
  const dir = tempDir(t);
  const bin = barePath(dir);
  // As root, run it as nobody, from a copy nobody can read.
  const root = process.getuid?.() === 0;
  const copy = join(dir, 'test-deps.sh');
  copyFileSync(SCRIPT, copy);
  for (const p of [dir, bin, copy]) chmodSync(p, 0o755);
  const r = runScript([], { PATH: bin }, root ? [where('setpriv'), '--reuid=65534', '--regid=65534', '--clear-groups'] : [], copy);
  t.equal(r.status, 1, `exit 1 ${r.stderr}`);
  t.match(r.stderr, /^test-deps: the tests need .*\bping\b.*; install them as root with: apt-get install -y --no-install-recommends .*\biputils-ping\b/);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
});

t.test('a bad argument: usage, exit 2', async (t) => {
  const r = runScript(['--install-everything'], process.env);
  t.equal(r.status, 2);
  t.match(r.stderr, /^usage: tools\/test-deps\.sh \[--dry-run\]/);
});

t.test('as root: installs the missing packages, with apt-get update only if the install fails', async (t) => {
  const dir = tempDir(t);
  const bin = barePath(dir);
  symlinkSync(where('timeout'), join(bin, 'timeout'));
  const log = join(dir, 'apt.log');
  writeFileSync(join(bin, 'id'), '#!/bin/bash\necho 0\n', { mode: 0o755 });
  // The stand-in apt-get logs its calls; "install" fails until "update" ran, then creates the commands.
  writeFileSync(join(bin, 'apt-get'), `#!/bin/bash
echo "$*" >> ${log}
case " $* " in
  *" update "*) : > ${dir}/updated ;;
  *" install "*) [ -e ${dir}/updated ] || exit 100
    for c in python3 chromium ip ss ping udhcpc iptables sysctl setpriv unshare arping tcpdump; do printf '#!/bin/sh\n' > ${bin}/$c; ${where('chmod')} 755 ${bin}/$c; done ;;
esac
`, { mode: 0o755 });
  const r = runScript([], { PATH: bin });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, /^test-deps: installing .*\biputils-ping\b.* \(for .*\bping\b.*\)/);
  const calls = readFileSync(log, 'utf8').trim().split('\n');
  t.equal(calls.length, 3, 'install, update, install');
  t.match(calls[0], /^-o DPkg::Lock::Timeout=120 install -y --no-install-recommends .*iputils-ping/);
  t.equal(calls[1], 'update');
  t.equal(calls[2], calls[0]);
  const again = runScript([], { PATH: bin });
  t.equal(again.status, 0);
  t.equal(readFileSync(log, 'utf8').trim().split('\n').length, 3, 'nothing missing: apt-get not called again');
});
