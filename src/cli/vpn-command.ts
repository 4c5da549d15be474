// The commands every VPN program shares (`groupvpn` and `socialvpn`):
//   start   runs `run` in the background (pid and log files in the state directory) and
//           returns 0 once the TAP is up and the node is in the ring, else says why
//   stop    stops it cleanly (TAP removed, overlay left) and waits until it is gone
//   status  asks the running VPN over its local get_state port
//   run     stays in the foreground (systemd; see config/groupvpn.service)
// What differs (config, mode, status lines) comes from the program (vpn-program.ts).
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError } from '../config/node-config.js';
import { LEVELS, LOG_FORMATS, loggerFor, parseLevel, parseLogFormat, quietable } from '../util/log.js';
import { progress } from '../util/progress.js';
import { queryState } from './groupvpn-status.js';
import { runVpn } from './groupvpn-run.js';
import { logFile, stateDirFor } from './state-dir.js';
import { checkCollisions, holdingsOf, InstanceCollision } from './instances.js';
import { findInstance, isAlive, removeStale, type PidRecord } from './pid-file.js';
import { installShutdown } from './shutdown.js';
import type { VpnProgram } from './vpn-program.js';

const say = (s: string) => process.stdout.write(s + '\n');
let NAME = 'groupvpn';
const fail = (s: string, code = 1) => { process.stderr.write(`${NAME}: ${s}\n`); return code; };

/** Runs `start|stop|status|run` of a VPN program; resolves with the exit code (-1: keep running). */
export async function vpnCommand(p: VpnProgram, argv: string[]): Promise<number> {
  NAME = p.name;
  const USAGE = p.usage;
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
      config: { type: 'string', short: 'c', default: p.defaultConfig }, ipop: { type: 'string', short: 'i' },
      'state-dir': { type: 'string' }, 'log-level': { type: 'string', default: 'info' }, 'log-format': { type: 'string', default: 'text' }, timeout: { type: 'string', default: '60' },
      json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    } }));
  } catch (e) { return fail(`${(e as Error).message}\n${USAGE}`, 2); }
  if (values.help) { say(USAGE); return 0; }
  const cmd = positionals[0];
  if (positionals.length !== 1 || !['start', 'stop', 'status', 'run'].includes(cmd!)) return fail(USAGE, 2);
  const level = parseLevel(values['log-level']!);
  if (!level) return fail(`--log-level must be one of ${LEVELS.join(', ')}`, 2);
  const format = parseLogFormat(values['log-format']!);
  if (!format) return fail(`--log-format must be one of ${LOG_FORMATS.join(', ')}`, 2);
  const timeout = Number(values.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) return fail('--timeout must be a positive number of seconds', 2);
  // stop needs no config: the pid file says which process and which device.
  if (cmd === 'stop') return stop(stateDirFor(values.config!, values['state-dir']));
  let loaded;
  try { loaded = p.load(values.config!, values.ipop, values['state-dir']); } catch (e) {
    if (e instanceof ConfigError) return fail(e.message, 2);
    throw e;
  }
  const { cfg, ipop, stateDir } = loaded;
  // A second instance must not take a running one's TAP, ports or state directory.
  if (cmd !== 'status') {
    try { checkCollisions(holdingsOf(cfg, ipop, { config: values.config!, ipopFile: values.ipop, stateDir })); } catch (e) {
      if (e instanceof InstanceCollision) return fail(e.message);
      throw e;
    }
  }
  switch (cmd) {
    case 'run': {
      const log = quietable(loggerFor(level, format));
      let stop;
      try { stop = await runVpn(p, { config: values.config!, ipop: values.ipop, stateDir: values['state-dir'], joinTimeoutMs: timeout * 1000, log }); } catch (e) {
        const code = e instanceof ConfigError ? 2 : 1;
        // JSON logs stay one object per line to the end.
        if (format === 'json') { log.error((e as Error).message); return code; }
        return fail((e as Error).message, code);
      }
      installShutdown(stop, log, 4000);
      return -1;
    }
    case 'start': return start(p, values, stateDir, ipop.getStatePort, timeout);
    case 'status': {
      if (!ipop.getStatePort) return fail('status needs the get_state port (IpopConfig/GetStatePort is 0)');
      const s = await queryState(ipop.getStatePort, 'status', 3000);
      if (!s) { say(`${p.name} is not running (nothing answers on 127.0.0.1:${ipop.getStatePort})`); return 3; }
      if (values.json) say(JSON.stringify(p.statusJson ? p.statusJson(s) : s, null, 2)); else p.printStatus(s, say);
      return 0;
    }
  }
  return 2;
}

async function start(p: VpnProgram, values: Record<string, unknown>, stateDir: string, port: number, timeout: number): Promise<number> {
  let other;
  try { other = findInstance(stateDir); } catch (e) { return fail(`cannot read the pid file in ${stateDir}: ${(e as Error).message}`); }
  if (other.state === 'running') return fail(`already running (pid ${other.record.pid}); ${p.name} stop first`);
  if (other.state === 'stale') { removeStale(stateDir); say(`removed a stale pid file: ${other.why}`); }
  if (!port) return fail(`start needs the get_state port to know when the VPN is ready (GetStatePort is 0); use ${p.name} run`);
  const args = ['run', '-c', String(values.config), '--log-level', String(values['log-level']), '--log-format', String(values['log-format']), '--timeout', String(timeout)];
  if (values.ipop) args.push('--ipop', String(values.ipop));
  if (values['state-dir']) args.push('--state-dir', String(values['state-dir']));
  mkdirSync(stateDir, { recursive: true });
  const log = logFile(stateDir, p.name);
  const fd = openSync(log, 'a');
  const child = spawn(process.execPath, [p.script, ...args], { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exited: number | null | undefined;
  child.on('exit', (code, sig) => { exited = code ?? (sig ? 128 : 1); });
  child.unref();
  const t0 = Date.now(), end = t0 + (timeout + 15) * 1000;
  const bar = progress();
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 200));
    if (exited !== undefined) { bar.done(); return fail(`the VPN did not start:\n${reasons(log)}`); }
    // The status reply waits for each peer's RTT ping (at most 1 s, for peers that are gone).
    const s = await queryState(port, 'status', 2500);
    const mine = s && s.pid === child.pid ? s : undefined;
    bar.update(`${p.name}: ${typeof mine?.phase === 'string' ? mine.phase : 'starting'}${typeof mine?.connections === 'number' ? `, ${mine.connections} connections` : ''}, ${Math.round((Date.now() - t0) / 1000)} s`);
    if (mine && mine.state === 'ready') {
      bar.done();
      say(`${p.name} started (pid ${child.pid}): ${p.startedLine(mine)}; log ${log}`);
      return 0;
    }
  }
  bar.done();
  child.kill('SIGKILL');
  return fail(`the VPN was not ready within ${timeout} s; stopped it. Last log lines:\n${reasons(log)}`);
}

/** The error lines of this start's log, or its tail. */
function reasons(log: string): string {
  let lines: string[] = [];
  try { lines = readFileSync(log, 'utf8').trimEnd().split('\n'); } catch { return '(no log)'; }
  const run = lines.slice(Math.max(0, lines.length - 40));
  const errors = run.filter((l) => l.includes('ERROR') || l.includes('"level":"error"') || l.includes(`${NAME}:`));
  return (errors.length ? errors.slice(-5) : run.slice(-5)).map((l) => `  ${l}`).join('\n');
}

async function stop(stateDir: string): Promise<number> {
  let found;
  try { found = findInstance(stateDir); } catch (e) { return fail(`cannot read the pid file in ${stateDir}: ${(e as Error).message}`); }
  if (found.state === 'none') { say(`${NAME} is not running`); return 3; }
  if (found.state === 'stale') {
    removeStale(stateDir);
    say(`${NAME} is not running (removed a stale pid file: ${found.why})`);
    return 3;
  }
  const r = found.record;
  signal(r, 'SIGTERM');
  if (!(await gone(r, 10_000))) {
    signal(r, 'SIGKILL');
    if (!(await gone(r, 5000))) return fail(`process ${r.pid} did not exit`);
    say(`${NAME} (pid ${r.pid}) did not stop within 10 s and was killed`);
  }
  removeStale(stateDir);
  if (existsSync(`/sys/class/net/${r.device}`)) return fail(`stopped, but the device ${r.device} still exists (a persistent TAP made by someone else?)`);
  say(`${NAME} stopped (pid ${r.pid}); ${r.device} removed`);
  return 0;
}

/** Signals the instance only while its pid still names it (start time and command line). */
function signal(r: PidRecord, sig: NodeJS.Signals): void {
  if (!isAlive(r)) return;
  try { process.kill(r.pid, sig); } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

async function gone(r: PidRecord, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!isAlive(r)) return true;
    await new Promise((res) => setTimeout(res, 100));
  }
  return false;
}
