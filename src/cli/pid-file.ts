// The pid file of a running `groupvpn run`: which process it is (pid, start time and command
// line, from /proc) and the TAP device it owns. `groupvpn stop` signals a process only when all
// three still match, so a stale file (a crash, then the pid reused by anything) is never
// trusted, and it needs no config: the device name is in the file.
import { linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PidRecord {
  pid: number;
  /** Field 22 of /proc/PID/stat: clock ticks since boot when the process started. */
  startTime: string;
  /** /proc/PID/cmdline, split at NUL. */
  cmdline: string[];
  /** The TAP device the instance creates (and removes when it stops). */
  device: string;
}

export type Instance =
  | { state: 'none' }
  | { state: 'stale'; why: string }
  | { state: 'running'; record: PidRecord };

export const pidFile = (stateDir: string) => join(stateDir, 'groupvpn.pid');

/** The start time of process `pid` (field 22 of /proc/PID/stat), or undefined if there is none. */
export function processStartTime(pid: number): string | undefined {
  let stat: string;
  try { stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return undefined; }
  // Field 2 (comm) is in parentheses and may itself hold spaces and ')': field 3 follows the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return rest[22 - 3];
}

function processCmdline(pid: number): string[] | undefined {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1); } catch { return undefined; }
}

/** This process, as its pid file describes it. */
export function selfRecord(device: string): PidRecord {
  const startTime = processStartTime(process.pid), cmdline = processCmdline(process.pid);
  if (startTime === undefined || cmdline === undefined) throw new Error('cannot read /proc/self: groupvpn needs Linux with /proc mounted');
  return { pid: process.pid, startTime, cmdline, device };
}

/** Line 1 is the bare pid (for `kill $(head -1 FILE)` and the like); line 2 the identity as JSON. */
const format = (r: PidRecord) => `${r.pid}\n${JSON.stringify({ startTime: r.startTime, cmdline: r.cmdline, device: r.device })}\n`;

function parse(text: string): PidRecord | undefined {
  const [first, second] = text.split('\n');
  const pid = Number(first);
  if (!Number.isInteger(pid) || pid <= 0 || !second) return undefined;
  try {
    const o = JSON.parse(second) as Partial<PidRecord>;
    if (typeof o.startTime !== 'string' || typeof o.device !== 'string' || !Array.isArray(o.cmdline) || !o.cmdline.every((a) => typeof a === 'string')) return undefined;
    return { pid, startTime: o.startTime, cmdline: o.cmdline, device: o.device };
  } catch { return undefined; }
}

/** True while the process of `r` exists: same pid, same start time, same command line. */
export function isAlive(r: PidRecord): boolean {
  return processStartTime(r.pid) === r.startTime && sameArgs(processCmdline(r.pid), r.cmdline);
}

const sameArgs = (a: string[] | undefined, b: string[]) => !!a && a.length === b.length && a.every((x, i) => x === b[i]);

function judge(text: string): Instance {
  const r = parse(text);
  if (!r) return { state: 'stale', why: 'the file does not say which process it was (not written by this version?)' };
  const start = processStartTime(r.pid);
  if (start === undefined) return { state: 'stale', why: `process ${r.pid} is gone` };
  if (start !== r.startTime) return { state: 'stale', why: `pid ${r.pid} now belongs to a process started later` };
  const cmd = processCmdline(r.pid);
  // A zombie (exited, not yet reaped) has an empty command line.
  if (!cmd?.length) return { state: 'stale', why: `process ${r.pid} has exited` };
  if (!sameArgs(cmd, r.cmdline)) return { state: 'stale', why: `pid ${r.pid} now runs something else (${(cmd ?? []).join(' ').slice(0, 80)})` };
  return { state: 'running', record: r };
}

/** What the pid file in `stateDir` says, checked against /proc. */
export function findInstance(stateDir: string): Instance {
  let text: string;
  try { text = readFileSync(pidFile(stateDir), 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'none' };
    throw e;
  }
  return judge(text);
}

/** Removes a stale pid file, unless it changed since it was judged (another start claimed it). */
export function removeStale(stateDir: string): void {
  let text: string;
  try { text = readFileSync(pidFile(stateDir), 'utf8'); } catch { return; }
  if (judge(text).state === 'stale') rmSync(pidFile(stateDir), { force: true });
}

export class AlreadyRunning extends Error {
  override name = 'AlreadyRunning';
  constructor(readonly pid: number) { super(`groupvpn is already running (pid ${pid}); groupvpn stop first`); }
}

/**
 * Makes this process the instance of `stateDir`. The file appears whole or not at all (a
 * hard link of a complete temporary file, which fails if the name exists), so two starts
 * cannot both win. A stale file is replaced; a live instance throws AlreadyRunning.
 */
export function claimPidFile(stateDir: string, device: string): PidRecord {
  const self = selfRecord(device);
  const tmp = `${pidFile(stateDir)}.${process.pid}.tmp`;
  writeFileSync(tmp, format(self));
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try { linkSync(tmp, pidFile(stateDir)); return self; } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const other = findInstance(stateDir);
      if (other.state === 'running') throw new AlreadyRunning(other.record.pid);
      removeStale(stateDir);
    }
    throw new Error(`cannot claim ${pidFile(stateDir)}: another groupvpn keeps replacing it`);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Removes the pid file if it is still this process's. */
export function releasePidFile(stateDir: string, self: PidRecord): void {
  const now = findInstance(stateDir);
  if (now.state === 'running' && now.record.pid === self.pid && now.record.startTime === self.startTime) rmSync(pidFile(stateDir), { force: true });
}
