// What bench:vpn compares ours with, each set up between two lab hosts: tinc 1.0 and
// wireguard-go, both from Debian, with their defaults (the issue's targets are stated against
// them, measured in the same run), and the Node floor relay (floor-relay.ts).
import { spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN } from './ipop.js';
import { baseEnv, pingArgv, run, stopProcess, waitFor, type Lab } from './netns.js';

/** Two daemons, one per host, and the virtual address of host i. */
export interface LabVpn { daemons: ChildProcess[]; vip: (i: number) => string }
export type FloorVariant = 'plain' | 'aead' | 'spin' | 'native' | 'native-flow';

const FLOOR_NET = '10.147.0';
const TINC_NET = '10.145.0'; // tinc's virtual /24; the lab underlay is 10.144.0.0/24
const WG_NET = '10.148.0';
const WG_PORT = 51820;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (bounded) until one ping from `from` to `ip` is answered. */
export async function waitPing(lab: Lab, from: string, ip: string, timeoutMs: number): Promise<void> {
  await waitFor(async () => (await lab.exec(from, pingArgv(ip, { count: 1, waitS: 1 }), { timeoutMs: 5000 })).code === 0, timeoutMs, `ping ${from} → ${ip}`, 300);
}

/** True once something in host's namespace listens on TCP port. */
export async function listening(lab: Lab, host: string, port: number): Promise<boolean> {
  const r = await lab.exec(host, ['ss', '-Hltn', `sport = :${port}`], { timeoutMs: 5000 });
  return r.code === 0 && r.stdout.trim() !== '';
}

/** tinc 1.0 between hosts [a, b] in router mode: a connects to b; virtual addresses TINC_NET.1/.2. */
export async function startTinc(lab: Lab, hosts: [string, string]): Promise<LabVpn> {
  const vip = (i: number) => `${TINC_NET}.${i + 1}`;
  const dirs = hosts.map((h) => join(lab.dir, 'tinc', h));
  for (const [i, h] of hosts.entries()) {
    const d = dirs[i]!;
    mkdirSync(join(d, 'hosts'), { recursive: true });
    writeFileSync(join(d, 'tinc.conf'), `Name = ${h}\nMode = router\nInterface = tinc0\nAddressFamily = ipv4\nBindToAddress = ${lab.ip(h)}\n${i === 0 ? `ConnectTo = ${hosts[1]}\n` : ''}`);
    writeFileSync(join(d, 'hosts', h), `Address = ${lab.ip(h)}\nPort = 655\nSubnet = ${vip(i)}/32\n`);
    writeFileSync(join(d, 'tinc-up'), `#!/bin/sh\nip link set "$INTERFACE" up\nip addr add ${vip(i)}/24 dev "$INTERFACE"\n`);
    writeFileSync(join(d, 'tinc-down'), '#!/bin/sh\nip link set "$INTERFACE" down\n');
    chmodSync(join(d, 'tinc-up'), 0o755);
    chmodSync(join(d, 'tinc-down'), 0o755);
    // stdin is /dev/null, so tincd -K takes the default key file names without asking.
    const k = await run(['tincd', '-c', d, '-K', '2048'], { timeoutMs: 60_000 });
    if (k.code !== 0) throw new Error(`tincd -K: ${k.stderr.trim()}`);
  }
  for (const [i, h] of hosts.entries()) writeFileSync(join(dirs[1 - i]!, 'hosts', h), readFileSync(join(dirs[i]!, 'hosts', h)));
  const start = (i: number) => lab.spawn(hosts[i]!, ['tincd', '-c', dirs[i]!, '-D', '-d1', `--pidfile=${dirs[i]}/pid`, `--logfile=${dirs[i]}/log`],
    { logFile: `${dirs[i]}/out` });
  const logTail = (i: number) => { try { return readFileSync(`${dirs[i]}/log`, 'utf8').trim().split('\n').slice(-3).join(' | '); } catch { return ''; } };
  // b listens first: tinc 1.0 waits 5 s before retrying a refused connection.
  const db = start(1);
  await waitFor(() => listening(lab, hosts[1], 655), 10_000, `tincd listening in ${hosts[1]}`).catch((e) => { throw new Error(`${e.message}: ${logTail(1)}`); });
  const da = start(0);
  await waitPing(lab, hosts[0], vip(1), 30_000).catch((e) => { throw new Error(`tinc tunnel: ${e.message}: ${logTail(0)}`); });
  await sleep(2000); // let tinc finish its UDP key exchange and PMTU probes, so the UDP path is measured
  return { daemons: [da, db], vip };
}

let tincVer: string | undefined;
export function tincVersion(): string {
  if (tincVer) return tincVer;
  const r = spawnSync('tincd', ['--version'], { encoding: 'utf8', env: baseEnv() });
  return (tincVer = /tinc version (\S+)/.exec(r.stdout ?? '')?.[1] ?? '1.0');
}

/**
 * wireguard-go (Debian's, userspace WireGuard) between hosts [a, b], configured with wg(8):
 * one peer each way, default MTU; virtual addresses WG_NET.1/.2. Each daemon gets a private
 * mount namespace with a scratch directory over /run, where it puts its control socket, so
 * nothing is written outside the lab's directory.
 */
export async function startWireguardGo(lab: Lab, hosts: [string, string]): Promise<LabVpn> {
  const vip = (i: number) => `${WG_NET}.${i + 1}`;
  const dir = join(lab.dir, 'wireguard-go');
  const keys: { priv: string; pub: string }[] = [];
  for (const i of [0, 1]) {
    const g = await run(['wg', 'genkey']);
    const p = await run(['wg', 'pubkey'], { input: g.stdout });
    if (g.code !== 0 || p.code !== 0) throw new Error(`wg genkey/pubkey: ${(g.stderr + p.stderr).trim()}`);
    const priv = join(dir, `key${i}`);
    mkdirSync(join(dir, `run${i}`), { recursive: true });
    writeFileSync(priv, g.stdout, { mode: 0o600 });
    keys.push({ priv, pub: p.stdout.trim() });
  }
  const daemons = hosts.map((h, i) => lab.spawn(h, ['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
    'mount --bind "$1" /run && exec wireguard-go -f "$2"', 'sh', join(dir, `run${i}`), `wgo${i}`], { logFile: join(dir, `log${i}`) }));
  const logTail = (i: number) => { try { return readFileSync(join(dir, `log${i}`), 'utf8').trim().split('\n').slice(-3).join(' | '); } catch { return ''; } };
  await stopOnFailure(daemons, async () => {
    for (const i of [0, 1]) {
      await waitFor(() => existsSync(join(dir, `run${i}`, 'wireguard', `wgo${i}.sock`)) || daemons[i]!.exitCode !== null, 10_000, `wireguard-go control socket in ${hosts[i]}`);
      if (daemons[i]!.exitCode !== null) throw new Error(`wireguard-go in ${hosts[i]} exited: ${logTail(i)}`);
    }
    for (const i of [0, 1]) {
      const j = 1 - i;
      // wg must see the daemon's /run: enter its mount namespace (and network namespace).
      const set = await run(['nsenter', '-t', String(daemons[i]!.pid), '-m', '-n', 'wg', 'set', `wgo${i}`, 'private-key', keys[i]!.priv,
        'listen-port', String(WG_PORT + i), 'peer', keys[j]!.pub, 'endpoint', `${lab.ip(hosts[j]!)}:${WG_PORT + j}`, 'allowed-ips', `${vip(j)}/32`]);
      if (set.code !== 0) throw new Error(`wg set in ${hosts[i]}: ${set.stderr.trim()}`);
      for (const cmd of [['ip', 'addr', 'add', `${vip(i)}/24`, 'dev', `wgo${i}`], ['ip', 'link', 'set', `wgo${i}`, 'up']]) {
        const r = await lab.exec(hosts[i]!, cmd);
        if (r.code !== 0) throw new Error(`${cmd.join(' ')} in ${hosts[i]}: ${r.stderr.trim()}`);
      }
    }
    await waitPing(lab, hosts[0], vip(1), 20_000).catch((e) => { throw new Error(`wireguard-go tunnel: ${e.message}: ${logTail(0)}`); });
  });
  return { daemons, vip };
}

let wgVer: string | undefined;
export function wireguardGoVersion(): string {
  if (wgVer) return wgVer;
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'wireguard-go'], { encoding: 'utf8', env: baseEnv() });
  return (wgVer = r.status === 0 && r.stdout.trim() ? r.stdout.trim() : '');
}

/** The Node floor relay (floor-relay.ts) between hosts [a, b]: plain, with AEAD, spinning, or on a native thread (floor-native.ts), plain or with the flow's datagrams; FLOOR_NET.1/.2. */
export async function startFloor(lab: Lab, hosts: [string, string], variant: FloorVariant = 'plain'): Promise<LabVpn> {
  const vip = (i: number) => `${FLOOR_NET}.${i + 1}`;
  const daemons = hosts.map((h, i) => lab.spawn(h, [process.execPath, variant.startsWith('native') ? BIN.floorNative : BIN.floorRelay, '--tap', 'tapfloor', '--vip', `${vip(i)}/24`,
    '--local', lab.ip(h), '--peer', lab.ip(hosts[1 - i]!), ...(variant === 'plain' || variant === 'native' ? [] : variant === 'native-flow' ? ['--flow'] : [`--${variant}`])]));
  await stopOnFailure(daemons, async () => {
    await waitFor(() => daemons.every((c) => /floor relay/.test(lab.output(c))) || daemons.some((c) => c.exitCode !== null), 10_000, 'floor relays');
    const dead = daemons.find((c) => c.exitCode !== null);
    if (dead) throw new Error(`floor relay exited: ${lab.output(dead).trim()}`);
    await waitPing(lab, hosts[0], vip(1), 10_000);
  });
  return { daemons, vip };
}

/** Runs set-up; if it fails, stops the daemons (whose TAPs and ports the next path needs) and rethrows. */
async function stopOnFailure(daemons: ChildProcess[], setUp: () => Promise<void>): Promise<void> {
  try {
    await setUp();
  } catch (e) {
    await Promise.all(daemons.map((d) => stopProcess(d)));
    throw e;
  }
}
