// A throw-away network lab of Linux network namespaces, for the VPN tests and benchmarks:
//
//   <base>-<host1> [eth0 10.X.0.1/24] ==veth== v1 --+
//   <base>-<host2> [eth0 10.X.0.2/24] ==veth== v2 --+-- br0 (bridge in namespace <base>)
//
// <base> is "<prefix>-<pid>-<seq>", so parallel runs never collide and a crashed run's
// namespaces can be found (cleanupStale). The lab has no uplink and never touches the root
// namespace, so no packet leaves it. Needs root and iproute2.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface ExecResult { code: number | null; stdout: string; stderr: string }

const STEP_MS = 15_000; // one ip(8) call
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** PATH with the sbin directories added: tincd, ip and iptables live there and a non-login PATH may lack them. */
function sbinPath(path = process.env.PATH ?? ''): string {
  const parts = path.split(delimiter).filter(Boolean);
  for (const d of ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin']) if (!parts.includes(d)) parts.push(d);
  return parts.join(delimiter);
}
export const baseEnv = (env?: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({ ...process.env, ...env, PATH: sbinPath(env?.PATH ?? process.env.PATH) });

/** Absolute path of an executable on PATH (plus sbin), or null. */
export function which(cmd: string): string | null {
  for (const d of sbinPath().split(delimiter)) {
    try { accessSync(join(d, cmd), constants.X_OK); return join(d, cmd); } catch { /* next */ }
  }
  return null;
}

/** Polls fn (every intervalMs) until it returns a truthy value, which it returns; throws after timeoutMs. */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs: number, what: string, intervalMs = 100): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() >= end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(Math.min(intervalMs, Math.max(1, end - Date.now())));
  }
}

/** Runs ip(8) synchronously (bounded); never throws. */
export function ipSync(args: string[]): ExecResult {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: STEP_MS, env: baseEnv() });
  return { code: r.error ? null : r.status, stdout: r.stdout ?? '', stderr: r.error ? r.error.message : (r.stderr ?? '') };
}

/** Runs a command (not in a namespace) with a time limit; never rejects. */
export function run(argv: string[], o: { timeoutMs?: number; input?: string | Buffer; env?: NodeJS.ProcessEnv; onSpawn?: (c: ChildProcess) => void } = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { env: baseEnv(o.env), detached: true, stdio: [o.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    o.onSpawn?.(child);
    let stdout = '', stderr = '';
    child.stdout!.on('data', (d) => { stdout += d; });
    child.stderr!.on('data', (d) => { stderr += d; });
    if (o.input !== undefined) { child.stdin!.on('error', () => {}); child.stdin!.end(o.input); }
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${o.timeoutMs ?? STEP_MS} ms]`;
      void stopProcess(child, 2000);
    }, o.timeoutMs ?? STEP_MS);
    child.on('error', (e) => { clearTimeout(timer); resolve({ code: null, stdout, stderr: stderr + e.message }); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

async function ip(args: string[]): Promise<string> {
  const r = await run(['ip', ...args]);
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${(r.stderr || `exit ${r.code}`).trim()}`);
  return r.stdout;
}

const exited = (c: ChildProcess) => c.exitCode !== null || c.signalCode !== null;

export function signalGroup(c: ChildProcess, sig: NodeJS.Signals): void {
  if (c.pid === undefined || exited(c)) return;
  // Children are spawned detached (their own process group), so helpers they start die too.
  try { process.kill(-c.pid, sig); } catch { try { c.kill(sig); } catch { /* gone */ } }
}

/** SIGTERM, then SIGKILL after graceMs; resolves once the process has exited (bounded). */
export async function stopProcess(c: ChildProcess, graceMs = 3000): Promise<void> {
  if (c.pid === undefined || exited(c)) return;
  const gone = new Promise<void>((r) => c.once('exit', () => r()));
  signalGroup(c, 'SIGTERM');
  if (await Promise.race([gone.then(() => true), sleep(graceMs).then(() => false)])) return;
  signalGroup(c, 'SIGKILL');
  await Promise.race([gone, sleep(2000)]);
}

/** argv for `ping` (iputils, else busybox's, which has no -n and never resolves names anyway). */
export function pingArgv(ipAddr: string, o: { count?: number; intervalS?: number; waitS?: number } = {}): string[] {
  const opts = ['-c', String(o.count ?? 1), '-i', String(o.intervalS ?? 0.2), '-W', String(o.waitS ?? 2), ipAddr];
  if (!which('ping') && which('busybox')) return ['busybox', 'ping', ...opts];
  return ['ping', '-n', ...opts];
}

/** Round-trip times in ms, one per reply, from ping's output (iputils or busybox). */
export const pingTimes = (out: string): number[] => [...out.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1]));

let probed: string | null | undefined;
/** null if root + /dev/net/tun + `ip netns` work here, else a one-line reason. */
export function labUnavailableReason(): string | null {
  if (process.env.BRUNET_NO_LAB) return 'network-namespace lab disabled by BRUNET_NO_LAB';
  if (probed !== undefined) return probed;
  const probe = (): string | null => {
    if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
    if (process.getuid?.() !== 0) return 'the network-namespace lab needs root';
    try { accessSync('/dev/net/tun', constants.R_OK | constants.W_OK); } catch { return 'no usable /dev/net/tun'; }
    if (!which('ip')) return 'iproute2 (ip) is not installed';
    const name = `labprobe-${process.pid}`;
    const add = ipSync(['netns', 'add', name]);
    if (add.code !== 0) return `ip netns add failed: ${add.stderr.trim().split('\n')[0]}`;
    const lo = ipSync(['-n', name, 'link', 'set', 'lo', 'up']);
    ipSync(['netns', 'del', name]);
    if (lo.code !== 0) return `cannot configure a network namespace: ${lo.stderr.trim().split('\n')[0]}`;
    return null;
  };
  return (probed = probe());
}

/** The parts of a tap Test that requireLab uses (structural, so any tap version fits). */
export interface LabTestLike {
  fail(message: string): unknown;
  plan(n: number, comment?: string): unknown;
  comment(...args: unknown[]): unknown;
}

/** The reason if one of the commands is not installed (tools/test-deps.sh installs the tests' commands), else null. */
export function missingCommandsReason(cmds: readonly string[]): string | null {
  const missing = cmds.filter((c) => !which(c));
  return missing.length === 0 ? null : `${missing.join(', ')} not installed (tools/test-deps.sh installs the tests' packages)`;
}

/**
 * True if the lab can run and the commands are installed; otherwise fails the test in CI
 * (CI=true) or skips it elsewhere, and returns false.
 */
export function requireLab(t: LabTestLike, cmds: readonly string[] = []): boolean {
  const why = labUnavailableReason() ?? missingCommandsReason(cmds);
  if (why === null) return true;
  if (process.env.CI === 'true') {
    t.fail(`network-namespace lab unavailable in CI: ${why}`);
  } else {
    t.comment(`skipping: ${why}`);
    t.plan(0, `skip: ${why}`);
  }
  return false;
}

/**
 * Installs the Debian packages of missing commands ({command: package}) with apt-get; needs root.
 * Throws if any stays missing. For the benchmarks' own tools: the tests' packages come from tools/test-deps.sh.
 */
export async function ensurePackages(cmds: Record<string, string>): Promise<void> {
  const missing = () => Object.keys(cmds).filter((c) => !which(c));
  const pkgs = () => [...new Set(missing().map((c) => cmds[c]!))];
  if (pkgs().length === 0) return;
  const want = pkgs();
  if (process.getuid?.() !== 0) throw new Error(`missing commands ${missing().join(', ')}; as root, apt-get install ${want.join(' ')}`);
  if (!which('apt-get')) throw new Error(`missing commands ${missing().join(', ')} and no apt-get to install ${want.join(' ')}`);
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => run(['apt-get', '-o', 'DPkg::Lock::Timeout=120', 'install', '-y', '--no-install-recommends', ...want], { timeoutMs: 600_000, env });
  process.stderr.write(`lab: installing Debian packages: ${want.join(' ')}\n`);
  let r = await install();
  if (r.code !== 0) {
    // Stale or absent package lists are the usual cause on a fresh machine.
    await run(['apt-get', 'update'], { timeoutMs: 300_000, env });
    r = await install();
  }
  if (missing().length > 0) {
    throw new Error(`apt-get install ${want.join(' ')} left ${missing().join(', ')} missing: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`);
  }
}

/** A zombie (exited, not yet reaped) counts as dead. */
function pidAlive(pid: number): boolean {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s[s.lastIndexOf(')') + 2] !== 'Z';
  } catch { return false; }
}

async function listNamespaces(): Promise<string[]> {
  const r = await run(['ip', 'netns', 'list']);
  return r.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0]!).filter(Boolean);
}

/** Kills every process still inside namespace ns (stray daemons), then deletes it. */
export async function deleteNamespace(ns: string): Promise<void> {
  const pids = (await run(['ip', 'netns', 'pids', ns])).stdout.split(/\s+/).filter(Boolean).map(Number);
  for (const p of pids) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
  if (pids.length > 0) await waitFor(() => pids.every((p) => !pidAlive(p)), 3000, `processes in ${ns} to exit`).catch(() => {});
  await run(['ip', 'netns', 'del', ns]);
}

/**
 * One bare namespace "<prefix>-<pid>-0" (stale ones of dead runs removed first), with `lo` up,
 * and `ip` running `ip -n <ns> …` (throwing on failure). The caller removes it with `destroy`
 * (from t.teardown, so it goes even on failure).
 */
export async function scratchNamespace(prefix: string): Promise<{ ns: string; ip(...args: string[]): void; destroy(): Promise<void> }> {
  await cleanupStale(prefix);
  const ns = `${prefix}-${process.pid}-0`;
  const add = ipSync(['netns', 'add', ns]);
  if (add.code !== 0) throw new Error(`ip netns add ${ns}: ${add.stderr.trim()}`);
  const ip = (...args: string[]) => {
    const r = ipSync(['-n', ns, ...args]);
    if (r.code !== 0) throw new Error(`ip -n ${ns} ${args.join(' ')}: ${r.stderr.trim()}`);
  };
  ip('link', 'set', 'lo', 'up');
  return { ns, ip, destroy: () => deleteNamespace(ns) };
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Removes namespaces (and scratch dirs) left by crashed runs: name "<prefix>-<pid>-..." whose pid is dead. */
export async function cleanupStale(prefix: string): Promise<void> {
  const re = new RegExp(`^${escapeRe(prefix)}-(\\d+)-\\d+(?:-|$)`);
  for (const ns of await listNamespaces()) {
    const m = re.exec(ns);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || pidAlive(pid)) continue;
    await deleteNamespace(ns);
  }
  for (const d of readdirSync(tmpdir())) {
    const m = re.exec(d);
    if (m && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) rmSync(join(tmpdir(), d), { recursive: true, force: true });
  }
}

/** Anything with a synchronous last-resort teardown (Lab, NatLab). */
export interface SyncDestroyable { destroySync(): void }

// Labs not yet destroyed, torn down synchronously if the process exits or is signalled.
const live = new Set<SyncDestroyable>();
const onExit = () => { for (const l of live) l.destroySync(); };
const onSignal = (sig: NodeJS.Signals) => { onExit(); process.exit(sig === 'SIGINT' ? 130 : 143); };
/** Registers a lab for teardown on process exit, SIGINT and SIGTERM. */
export function track(l: SyncDestroyable): void {
  if (live.size === 0) { process.on('exit', onExit); process.on('SIGINT', onSignal); process.on('SIGTERM', onSignal); }
  live.add(l);
}
/** Undoes track() (after a normal destroy). */
export function untrack(l: SyncDestroyable): void {
  live.delete(l);
  if (live.size === 0) { process.off('exit', onExit); process.off('SIGINT', onSignal); process.off('SIGTERM', onSignal); }
}

let seq = 0;

export class Lab {
  /** Scratch directory for configs and logs; removed by destroy() unless LAB_KEEP_DIR is set. */
  readonly dir: string;
  readonly hosts: readonly string[];
  /** The switch namespace (holds bridge br0). */
  readonly switchNs: string;
  private readonly procs = new Set<ChildProcess>();
  private readonly tails = new WeakMap<ChildProcess, { s: string }>();
  private readonly created: string[] = [];
  private destroying: Promise<void> | undefined;

  private constructor(readonly base: string, hosts: string[], private readonly net: string) {
    this.hosts = hosts;
    this.switchNs = base;
    this.dir = mkdtempSync(join(tmpdir(), `${base}-`));
  }

  /** Builds the lab: hosts get 10.X.0.<index+1>/24 on eth0; subnet like "10.144.0.0/24" or "10.144.0". */
  static async create(prefix: string, hosts: string[], o: { subnet?: string } = {}): Promise<Lab> {
    if (!/^[a-z][a-z0-9]{0,11}$/i.test(prefix)) throw new Error(`lab prefix must be 1-12 letters/digits: ${prefix}`);
    if (hosts.length < 1 || hosts.length > 253) throw new Error('a lab has 1..253 hosts');
    for (const h of hosts) if (!/^[a-z0-9_]{1,32}$/i.test(h)) throw new Error(`bad host name: ${h}`);
    if (new Set(hosts).size !== hosts.length) throw new Error('duplicate host names');
    const m = /^(\d+)\.(\d+)\.(\d+)(?:\.0(?:\/24)?)?$/.exec(o.subnet ?? '10.144.0.0/24');
    if (!m || [m[1], m[2], m[3]].some((x) => Number(x) > 255)) throw new Error(`subnet must be a /24 like 10.144.0.0/24: ${o.subnet}`);
    const why = labUnavailableReason();
    if (why) throw new Error(why);
    await cleanupStale(prefix);
    const lab = new Lab(`${prefix}-${process.pid}-${seq++}`, hosts, `${m[1]}.${m[2]}.${m[3]}`);
    track(lab);
    try {
      await lab.build();
    } catch (e) {
      await lab.destroy();
      throw e;
    }
    return lab;
  }

  private async addNs(ns: string): Promise<void> {
    await ip(['netns', 'add', ns]);
    this.created.push(ns);
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  private async build(): Promise<void> {
    const sw = this.switchNs;
    await this.addNs(sw);
    await ip(['-n', sw, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    await ip(['-n', sw, 'link', 'set', 'br0', 'up']);
    for (const [i, h] of this.hosts.entries()) {
      const ns = this.ns(h), port = `v${i + 1}`;
      await this.addNs(ns);
      // Created inside the switch namespace, so interface names never meet the root namespace's.
      await ip(['-n', sw, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await ip(['-n', sw, 'link', 'set', port, 'master', 'br0', 'up']);
      await ip(['-n', ns, 'addr', 'add', `${this.ip(h)}/24`, 'dev', 'eth0']);
      await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
    }
  }

  /**
   * A namespace `name` behind a bridge of `host` (a container on that host): its eth0 is a veth
   * whose peer `port` is a port of `bridge` in the host's namespace. exec() and spawn() take
   * `name` like a host; destroy() removes it.
   */
  async attach(name: string, host: string, bridge: string, port: string): Promise<void> {
    if (!/^[a-z0-9_]{1,32}$/i.test(name) || this.hosts.includes(name)) throw new Error(`bad or duplicate namespace name: ${name}`);
    const ns = this.ns(name), hostNs = this.ns(this.hosts[this.index(host)]!);
    await this.addNs(ns);
    await ip(['-n', hostNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await ip(['-n', hostNs, 'link', 'set', port, 'master', bridge, 'up']);
    await ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
  }

  private index(host: string): number {
    const i = this.hosts.indexOf(host);
    if (i < 0) throw new Error(`no host ${host} in lab ${this.base}`);
    return i;
  }

  /** Namespace name of a host. */
  ns(host: string): string { return `${this.base}-${host}`; }
  /** Underlay IPv4 address of a host. */
  ip(host: string): string { return `${this.net}.${this.index(host) + 1}`; }
  /** The underlay subnet, e.g. "10.144.0.0/24". */
  get subnet(): string { return `${this.net}.0/24`; }

  /** Runs a command in the host's namespace with a time limit (default 30 s); never rejects. */
  exec(host: string, argv: string[], o: { timeoutMs?: number; input?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): Promise<ExecResult> {
    if (this.destroying) return Promise.resolve({ code: null, stdout: '', stderr: 'lab destroyed' });
    return run(['ip', 'netns', 'exec', this.ns(host), ...argv], {
      timeoutMs: o.timeoutMs ?? 30_000, input: o.input, env: o.env,
      onSpawn: (c) => { this.procs.add(c); c.once('exit', () => this.procs.delete(c)); },
    });
  }

  /** Starts a long-running process in the host's namespace; destroy() stops it. Output goes to logFile, else to output(). */
  spawn(host: string, argv: string[], o: { env?: NodeJS.ProcessEnv; cwd?: string; logFile?: string } = {}): ChildProcess {
    if (this.destroying) throw new Error('lab destroyed');
    return spawnIn(this.ns(host), argv, o, this.procs, this.tails);
  }

  /**
   * Random loss of `percent` % of the frames the bridge forwards to every host (nftables in
   * the switch namespace: this kernel may have no netem); 0 removes it.
   */
  async setLoss(percent: number): Promise<void> {
    await run(['ip', 'netns', 'exec', this.switchNs, 'nft', 'delete', 'table', 'bridge', 'labloss'], { timeoutMs: 10_000 }); // absent at first
    if (percent <= 0) return;
    const ppm = Math.round(percent * 10_000);
    const rules = this.hosts.map((_h, i) => `    oifname "v${i + 1}" numgen random mod 1000000 < ${ppm} counter drop\n`).join('');
    const r = await run(['ip', 'netns', 'exec', this.switchNs, 'nft', '-f', '-'], {
      timeoutMs: 10_000, input: `table bridge labloss {\n  chain loss {\n    type filter hook forward priority 0; policy accept;\n${rules}  }\n}\n`,
    });
    if (r.code !== 0) throw new Error(`nft (loss ${percent} %): ${r.stderr.trim()}`);
  }

  /** The last 64 KiB of stdout+stderr of a process started by spawn() without logFile. */
  output(c: ChildProcess): string { return this.tails.get(c)?.s ?? ''; }

  /** Stops tracked processes, kills anything left in the namespaces, deletes them; idempotent. */
  destroy(): Promise<void> {
    this.destroying ??= tearDown(this, this.procs, this.created, this.dir);
    return this.destroying;
  }

  /** Synchronous last-resort teardown for process exit and signals. */
  destroySync(): void { tearDownSync(this, this.procs, this.created, this.dir); }
}

/**
 * Starts a long-running process in a namespace for a lab (Lab and NatLab): tracked in `procs`
 * until it exits; output to o.logFile, or drained into `tails` (the last 64 KiB).
 */
export function spawnIn(ns: string, argv: string[], o: { env?: NodeJS.ProcessEnv; cwd?: string; logFile?: string },
  procs: Set<ChildProcess>, tails: WeakMap<ChildProcess, { s: string }>): ChildProcess {
  const fd = o.logFile ? openSync(o.logFile, 'a') : undefined;
  // "ip netns exec" execs the command in place: child.pid is the command's own pid.
  const c = spawn('ip', ['netns', 'exec', ns, ...argv], {
    env: baseEnv(o.env), cwd: o.cwd, detached: true, stdio: ['ignore', fd ?? 'pipe', fd ?? 'pipe'],
  });
  if (fd !== undefined) closeSync(fd);
  procs.add(c);
  c.once('exit', () => procs.delete(c));
  c.on('error', () => { /* reported through exit code / output */ });
  if (fd === undefined) {
    // Always drain the pipes (a full pipe would stall the child); keep the last 64 KiB.
    const tail = { s: '' };
    tails.set(c, tail);
    const add = (d: Buffer) => { tail.s = (tail.s + d.toString()).slice(-65536); };
    c.stdout!.on('data', add);
    c.stderr!.on('data', add);
  }
  return c;
}

/** A lab's teardown (Lab and NatLab): stop its processes, delete its namespaces (newest first) and its scratch directory. */
export async function tearDown(lab: { destroySync(): void }, procs: Set<ChildProcess>, created: string[], dir: string): Promise<void> {
  await Promise.all([...procs].map((c) => stopProcess(c)));
  for (const ns of [...created].reverse()) await deleteNamespace(ns);
  created.length = 0;
  if (!process.env.LAB_KEEP_DIR) rmSync(dir, { recursive: true, force: true });
  untrack(lab);
}

/** The same, synchronously and by SIGKILL: for process exit and signals. */
export function tearDownSync(lab: { destroySync(): void }, procs: Set<ChildProcess>, created: string[], dir: string): void {
  for (const c of procs) signalGroup(c, 'SIGKILL');
  for (const ns of [...created].reverse()) {
    const pids = ipSync(['netns', 'pids', ns]).stdout.split(/\s+/).filter(Boolean).map(Number);
    for (const p of pids) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
    ipSync(['netns', 'del', ns]);
  }
  created.length = 0;
  if (!process.env.LAB_KEEP_DIR) rmSync(dir, { recursive: true, force: true });
  untrack(lab);
}
