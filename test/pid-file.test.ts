// groupvpn's pid file: a process counts as the instance only while its pid, start time and
// command line all match, so a stale file naming an unrelated process is never trusted.
// `groupvpn stop` is tested here without a TAP (a `sleep` stands in for the instance).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { claimPidFile, findInstance, isAlive, pidFile, processStartTime, releasePidFile, selfRecord } from '../src/cli/pid-file.js';
import { ROOT, run, tempDir } from './helpers/procs.js';

const GROUPVPN = join(ROOT, 'dist/src/cli/groupvpn.js');

/** An unrelated process (a `sleep`), killed on teardown. */
function sleeper(t: { teardown(fn: () => void): void }): ChildProcess & { pid: number } {
  const c = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.teardown(() => { c.kill('SIGKILL'); });
  return c as ChildProcess & { pid: number };
}
/** Running (a zombie is not). */
const alive = (pid: number) => {
  try { return !/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
};
const cmdlineOf = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
/** A pid file in the current format. */
const record = (dir: string, pid: number, startTime: string, cmdline: string[], device = 'tapnone0') =>
  writeFileSync(pidFile(dir), `${pid}\n${JSON.stringify({ startTime, cmdline, device })}\n`);

t.test('start time is field 22 of /proc/PID/stat, also when the name holds spaces and parentheses', async (t) => {
  const self = processStartTime(process.pid);
  t.match(self, /^\d+$/);
  t.equal(processStartTime(process.pid), self, 'stable');
  t.equal(processStartTime(2 ** 22 + 1), undefined, 'no such process');
  // A command name (comm, the executable's file name) with ") (" in it must not shift the fields.
  const odd = join(tempDir(t), 'x) (y z');
  symlinkSync(execFileSync('sh', ['-c', 'command -v sleep'], { encoding: 'utf8' }).trim(), odd);
  const c = spawn(odd, ['30'], { stdio: 'ignore' });
  t.teardown(() => { c.kill('SIGKILL'); });
  await new Promise((r) => setTimeout(r, 200));
  const stat = readFileSync(`/proc/${c.pid}/stat`, 'utf8');
  t.match(stat, /^\d+ \(x\) \(y z\) S /, 'the name holds ") ("');
  t.equal(processStartTime(c.pid!), stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
});

t.test('a file naming an unrelated process is stale, whatever it claims', async (t) => {
  const dir = tempDir(t);
  const s = sleeper(t);
  await new Promise((r) => setTimeout(r, 100));
  t.same(findInstance(dir), { state: 'none' }, 'no file');
  writeFileSync(pidFile(dir), `${s.pid}\n`);
  t.match(findInstance(dir), { state: 'stale', why: /does not say which process/ }, 'a bare pid (older format) cannot be verified');
  record(dir, s.pid, '1', cmdlineOf(s.pid));
  t.match(findInstance(dir), { state: 'stale', why: /started later/ }, 'wrong start time: the pid was reused');
  record(dir, s.pid, processStartTime(s.pid)!, [process.execPath, GROUPVPN, 'run']);
  t.match(findInstance(dir), { state: 'stale', why: /now runs something else \(sleep 60\)/ }, 'wrong command line');
  record(dir, 2 ** 22 + 1, '1', ['x']);
  t.match(findInstance(dir), { state: 'stale', why: /is gone/ });
  writeFileSync(pidFile(dir), 'garbage');
  t.equal(findInstance(dir).state, 'stale');
  record(dir, s.pid, processStartTime(s.pid)!, cmdlineOf(s.pid));
  t.match(findInstance(dir), { state: 'running', record: { pid: s.pid, device: 'tapnone0' } }, 'all three match');
  s.kill('SIGKILL');
  await new Promise((r) => s.once('exit', r));
  t.equal(findInstance(dir).state, 'stale', 'gone once it exits');
});

t.test('claim: replaces a stale file, refuses a live instance, releases only its own', async (t) => {
  const dir = tempDir(t);
  const s = sleeper(t);
  await new Promise((r) => setTimeout(r, 100));
  writeFileSync(pidFile(dir), `${s.pid}\n`);
  const me = claimPidFile(dir, 'tapx');
  t.same(me, selfRecord('tapx'));
  t.match(findInstance(dir), { state: 'running', record: { pid: process.pid, device: 'tapx' } }, 'the stale file was replaced');
  t.ok(isAlive(me));
  t.throws(() => claimPidFile(dir, 'tapx'), { name: 'AlreadyRunning', pid: process.pid }, 'a second claim while this one lives');
  // Another live instance (the sleep, as if it were one) keeps its file.
  record(dir, s.pid, processStartTime(s.pid)!, cmdlineOf(s.pid));
  t.throws(() => claimPidFile(dir, 'tapx'), new RegExp(`already running \\(pid ${s.pid}\\)`));
  releasePidFile(dir, me);
  t.ok(existsSync(pidFile(dir)), "release leaves another instance's file alone");
  t.equal(alive(s.pid), true);
});

t.test('groupvpn stop never signals a process that is not the instance', async (t) => {
  const dir = tempDir(t);
  const s = sleeper(t);
  await new Promise((r) => setTimeout(r, 100));
  // No valid config is needed: only the state directory.
  const stop = () => run(GROUPVPN, ['stop', '-c', join(dir, 'no-such.config'), '--state-dir', dir]);

  writeFileSync(pidFile(dir), `${s.pid}\n`);
  let r = await stop();
  t.equal(r.code, 3, 'nothing running: exit 3');
  t.match(r.stdout, /groupvpn is not running \(removed a stale pid file: /);
  t.equal(alive(s.pid), true, 'the unrelated sleep was not signalled');
  t.notOk(existsSync(pidFile(dir)), 'the stale file is gone');

  record(dir, s.pid, '1', cmdlineOf(s.pid));
  r = await stop();
  t.equal(r.code, 3);
  t.match(r.stdout, /started later/);
  t.equal(alive(s.pid), true, 'a reused pid is not signalled');

  r = await stop();
  t.equal(r.code, 3, 'no pid file: exit 3');
  t.equal(r.stdout, 'groupvpn is not running\n');

  // The file names the sleep exactly (as if it were the instance): then stop signals it.
  record(dir, s.pid, processStartTime(s.pid)!, cmdlineOf(s.pid), 'tapnone0');
  r = await stop();
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`groupvpn stopped \\(pid ${s.pid}\\); tapnone0 removed`), 'the device name comes from the pid file');
  await new Promise((res) => setTimeout(res, 100));
  t.equal(alive(s.pid), false, 'the instance got SIGTERM');
  t.notOk(existsSync(pidFile(dir)));
});

t.test('groupvpn start removes a stale pid file instead of refusing', async (t) => {
  const dir = tempDir(t);
  const s = sleeper(t);
  await new Promise((r) => setTimeout(r, 100));
  const cfg = join(dir, 'node.config');
  // GetStatePort 0 makes start stop right after the pid check, before anything is spawned.
  writeFileSync(cfg, '<NodeConfig><BrunetNamespace>r</BrunetNamespace><IpopConfig><IpopNamespace>ns</IpopNamespace><GetStatePort>0</GetStatePort></IpopConfig></NodeConfig>');
  writeFileSync(pidFile(dir), `${s.pid}\n`);
  let r = await run(GROUPVPN, ['start', '-c', cfg, '--state-dir', dir]);
  t.match(r.stdout, /removed a stale pid file: the file does not say which process/);
  t.notOk(existsSync(pidFile(dir)));
  t.match(r.stderr, /start needs the get_state port/, 'and went on (a real start is in groupvpn-netns.test.ts)');
  t.equal(alive(s.pid), true);
  // With a live instance it refuses.
  record(dir, s.pid, processStartTime(s.pid)!, cmdlineOf(s.pid));
  writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('<GetStatePort>0</GetStatePort>', '<GetStatePort>5999</GetStatePort>'));
  r = await run(GROUPVPN, ['start', '-c', cfg, '--state-dir', dir]);
  t.equal(r.code, 1);
  t.match(r.stderr, new RegExp(`already running \\(pid ${s.pid}\\); groupvpn stop first`));
  t.equal(alive(s.pid), true);
});
