// Spawning run_bootstrap_node / crawl from the built dist/ (npm test builds first), with
// every child killed on teardown and every wait bounded.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freeTcpPort, freeUdpPort } from './ports.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const RUN = join(ROOT, 'dist/src/cli/run-bootstrap-node.js');
export const CRAWL = join(ROOT, 'dist/tools/crawl.js');

export function tempDir(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'brunet-test-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** A NodeConfig on loopback; `remoteTA` replaces the RemoteTA made from `remote`; `extra` is XML added as is. */
export function writeConfig(dir: string, name: string, o: { ns?: string; udp: number; remote: number; remoteTA?: string; control?: number; security?: string }): string {
  const p = join(dir, name);
  writeFileSync(p, `<?xml version="1.0"?>
<NodeConfig>
  <BrunetNamespace>${o.ns ?? 'testns'}</BrunetNamespace>
  <EdgeListeners><EdgeListener type="udp"><port>${o.udp}</port></EdgeListener></EdgeListeners>
  <RemoteTAs><Transport>${o.remoteTA ?? `brunet.udp://127.0.0.1:${o.remote}`}</Transport></RemoteTAs>
  <XmlRpcManager><Enabled>${o.control ? 'true' : 'false'}</Enabled><Port>${o.control ?? 10000}</Port></XmlRpcManager>
  ${o.security ?? ''}
</NodeConfig>
`);
  return p;
}

/** A temp dir with n.config: a node on loopback with its own UDP and control ports and its DHT in memory. */
export async function loopbackConfig(t: { teardown(fn: () => void): void }, ns: string, o: { remoteTA?: string } = {}): Promise<{ dir: string; cfg: string; udp: number; control: number }> {
  const dir = tempDir(t);
  const [udp, control] = [await freeUdpPort(), await freeTcpPort()];
  const cfg = writeConfig(dir, 'n.config', { ns, udp, remote: udp, remoteTA: o.remoteTA, control, security: '<Dht><DataDirectory>memory</DataDirectory></Dht>' });
  return { dir, cfg, udp, control };
}

export interface Proc { child: ChildProcess; output: () => string; exited: Promise<number | null> }

export function startNodeProcess(t: { teardown(fn: () => void): void }, args: string[]): Proc {
  const child = spawn(process.execPath, [RUN, '--bind', '127.0.0.1', '--log-level', 'warn', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  return { child, output: () => out, exited };
}

export async function waitOutput(p: Proc, re: RegExp, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (re.test(p.output())) return true;
    if (p.child.exitCode !== null) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

export function run(file: string, args: string[], timeoutMs = 30_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [file, ...args], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

/** Runs the crawl CLI until Total Nodes and Consistency reach the wanted values (bounded). */
export async function crawlUntil(port: number, total: number, ms: number): Promise<Record<string, number> | undefined> {
  const end = Date.now() + ms;
  let last: Record<string, number> | undefined;
  while (Date.now() < end) {
    const r = await run(CRAWL, ['--port', String(port), '--json'], 20_000);
    if (r.code === 0) {
      last = JSON.parse(r.stdout);
      if (last!['Total Nodes'] === total && last!.Consistency === 1) return last;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return last;
}
