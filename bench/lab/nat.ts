// A NAT lab of network namespaces, for the NAT-traversal test and `npm run bench:nat`:
//
//   public segment 10.150.0.0/24 (bridge br0 in the switch namespace <base>):
//     boot .2   pub .3   noudp .4 (UDP dropped by iptables)   cone1 .11  cone2 .12  sym1 .21  sym2 .22
//   behind each NAT router, its own LAN (bridge "lan" in the router namespace, router at .1):
//     cone1 10.151.1.0/24: c1a .2, c1b .3      cone2 10.151.2.0/24: c2a .2, c2b .3
//     sym1  10.151.3.0/24: s1a .2, s1b .3      sym2  10.151.4.0/24: s2a .2, s2b .3
//
// Cone routers MASQUERADE (Linux keeps the source port when it is free: a port-preserving NAT
// with address-and-port-dependent filtering); symmetric ones MASQUERADE --random-fully (a
// fresh random port per flow). Public hosts have no route to the LANs, the root namespace is
// never touched and there is no uplink, so no packet leaves the lab. Needs root, iproute2
// and iptables. Namespaces are "<prefix>-<pid>-<seq>[-<host>]", removed by destroy(), on
// process exit, or by the next run's cleanupStale.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, ROOT } from './ipop.js';
import {
  cleanupStale, labUnavailableReason, missingCommandsReason, run, spawnIn, tearDown, tearDownSync, track, waitFor,
  type ExecResult,
} from './netns.js';

/** The smallest UDP payload of a routed message on a secure edge: secure header 10 + tag 16 + routing header 49. */
export const ROUTED_UDP_MIN = 75;

export type HostKind = 'public' | 'cone' | 'sym';
interface Router { name: string; ip: string; lan: string; kind: 'cone' | 'sym' }
const PUB = '10.150.0';
const ROUTERS: Router[] = [
  { name: 'cone1', ip: `${PUB}.11`, lan: '10.151.1', kind: 'cone' },
  { name: 'cone2', ip: `${PUB}.12`, lan: '10.151.2', kind: 'cone' },
  { name: 'sym1', ip: `${PUB}.21`, lan: '10.151.3', kind: 'sym' },
  { name: 'sym2', ip: `${PUB}.22`, lan: '10.151.4', kind: 'sym' },
];
const PUBLIC: Record<string, string> = { boot: `${PUB}.2`, pub: `${PUB}.3`, noudp: `${PUB}.4` };
const PRIVATE: Record<string, [router: string, index: number]> = {
  c1a: ['cone1', 2], c1b: ['cone1', 3], c2a: ['cone2', 2], c2b: ['cone2', 3],
  s1a: ['sym1', 2], s1b: ['sym1', 3], s2a: ['sym2', 2], s2b: ['sym2', 3],
};
/** Hosts that run overlay members (boot runs the bootstrap overlay). */
export const MEMBERS = ['pub', 'noudp', 'c1a', 'c1b', 'c2a', 'c2b', 's1a', 's1b', 's2a', 's2b'] as const;
export const NAT_PORT_BASE = 17000;
const BLOCK = (op: '-A' | '-D') => [
  ['iptables', op, 'OUTPUT', '-p', 'udp', '!', '-o', 'lo', '-j', 'DROP'],
  ['iptables', op, 'INPUT', '-p', 'udp', '!', '-i', 'lo', '-j', 'DROP'],
];

let seq = 0;

export class NatLab {
  readonly dir: string;
  readonly switchNs: string;
  private readonly addrs = new Map<string, string>();
  private readonly procs = new Set<ChildProcess>();
  private readonly tails = new WeakMap<ChildProcess, { s: string }>();
  private readonly created: string[] = [];
  private readonly counters = new Set<string>();
  private destroying: Promise<void> | undefined;

  private constructor(readonly base: string) {
    this.switchNs = base;
    this.dir = mkdtempSync(join(tmpdir(), `${base}-`));
  }

  /** Builds the whole topology (about 2 s); throws with the reason if the lab cannot run here. */
  static async create(prefix = 'nat'): Promise<NatLab> {
    const why = natLabUnavailableReason();
    if (why) throw new Error(why);
    await cleanupStale(prefix);
    const lab = new NatLab(`${prefix}-${process.pid}-${seq++}`);
    track(lab);
    try { await lab.build(); } catch (e) { await lab.destroy(); throw e; }
    return lab;
  }

  /** Every host and router name. */
  static get hosts(): string[] { return [...Object.keys(PUBLIC), ...Object.keys(PRIVATE)]; }

  ns(host: string): string { return `${this.base}-${host}`; }
  /** The host's current address on its own segment. */
  ip(host: string): string {
    const a = this.addrs.get(host);
    if (!a) throw new Error(`no host ${host} in NAT lab ${this.base}`);
    return a;
  }
  /** The NAT router in front of a host, if any. */
  routerOf(host: string): string | undefined { return PRIVATE[host]?.[0]; }
  kind(host: string): HostKind { const r = this.routerOf(host); return r ? ROUTERS.find((x) => x.name === r)!.kind : 'public'; }
  /** The address a host's traffic carries on the public segment (its router's, behind a NAT). */
  publicIp(host: string): string { const r = this.routerOf(host); return r ? this.ip(r) : this.ip(host); }

  private async sh(ns: string, argv: string[]): Promise<void> {
    const r = await run(['ip', 'netns', 'exec', ns, ...argv]);
    if (r.code !== 0) throw new Error(`${ns}: ${argv.join(' ')}: ${(r.stderr || `exit ${r.code}`).trim()}`);
  }
  private async ipc(args: string[]): Promise<void> {
    const r = await run(['ip', ...args]);
    if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${(r.stderr || `exit ${r.code}`).trim()}`);
  }
  private async addNs(ns: string): Promise<void> {
    await this.ipc(['netns', 'add', ns]);
    this.created.push(ns);
    await this.ipc(['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  /** A veth pair from a bridge in namespace `bridgeNs` to eth0 of a new host namespace. */
  private async plug(bridgeNs: string, bridge: string, port: string, host: string, addr: string, gw?: string): Promise<void> {
    const ns = this.ns(host);
    await this.addNs(ns);
    await this.ipc(['-n', bridgeNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    await this.ipc(['-n', bridgeNs, 'link', 'set', port, 'master', bridge, 'up']);
    await this.ipc(['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0']);
    await this.ipc(['-n', ns, 'link', 'set', 'eth0', 'up']);
    if (gw) await this.ipc(['-n', ns, 'route', 'add', 'default', 'via', gw]);
    this.addrs.set(host, addr);
  }

  private async build(): Promise<void> {
    const sw = this.switchNs;
    await this.addNs(sw);
    await this.ipc(['-n', sw, 'link', 'add', 'br0', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    await this.ipc(['-n', sw, 'link', 'set', 'br0', 'up']);
    let port = 1;
    for (const [h, a] of Object.entries(PUBLIC)) await this.plug(sw, 'br0', `v${port++}`, h, a);
    for (const r of ROUTERS) {
      await this.plug(sw, 'br0', `v${port++}`, r.name, r.ip);
      const rns = this.ns(r.name);
      await this.ipc(['-n', rns, 'link', 'add', 'lan', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
      await this.ipc(['-n', rns, 'addr', 'add', `${r.lan}.1/24`, 'dev', 'lan']);
      await this.ipc(['-n', rns, 'link', 'set', 'lan', 'up']);
      await this.sh(rns, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
      await this.sh(rns, ['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'eth0', '-j', 'MASQUERADE', ...(r.kind === 'sym' ? ['--random-fully'] : [])]);
      // Like any home router: unsolicited packets to the router itself are dropped. (Without
      // this, Linux confirms a conntrack entry for them, which then clashes with the mapping
      // an outgoing packet to the same peer needs, and the NAT moves that packet to another port.)
      await this.sh(rns, ['iptables', '-A', 'INPUT', '-i', 'eth0', '-m', 'conntrack', '--ctstate', 'NEW,INVALID', '-j', 'DROP']);
      for (const [h, [router, i]] of Object.entries(PRIVATE)) {
        if (router === r.name) await this.plug(rns, 'lan', `l${i}`, h, `${r.lan}.${i}`, `${r.lan}.1`);
      }
    }
    await this.setUdpBlocked('noudp', true);
  }

  /** Runs a command in the host's namespace with a time limit (default 30 s); never rejects. */
  exec(host: string, argv: string[], o: { timeoutMs?: number; input?: string | Buffer; env?: NodeJS.ProcessEnv } = {}): Promise<ExecResult> {
    if (this.destroying) return Promise.resolve({ code: null, stdout: '', stderr: 'lab destroyed' });
    return run(['ip', 'netns', 'exec', this.ns(host), ...argv], {
      timeoutMs: o.timeoutMs ?? 30_000, input: o.input, env: o.env,
      onSpawn: (c) => { this.procs.add(c); c.once('exit', () => this.procs.delete(c)); },
    });
  }

  /** Starts a long-running process in the host's namespace; destroy() stops it. Output: logFile, else output(). */
  spawn(host: string, argv: string[], o: { env?: NodeJS.ProcessEnv; logFile?: string } = {}): ChildProcess {
    if (this.destroying) throw new Error('lab destroyed');
    return spawnIn(this.ns(host), argv, o, this.procs, this.tails);
  }
  output(c: ChildProcess): string { return this.tails.get(c)?.s ?? ''; }

  /** Drops (true) or passes again (false) all non-loopback UDP in and out of a host. */
  async setUdpBlocked(host: string, blocked: boolean): Promise<void> {
    for (const argv of BLOCK(blocked ? '-A' : '-D')) await this.sh(this.ns(host), argv);
  }

  /**
   * Gives a NAT router another public address (an ISP re-addressing a home router): the old
   * one is removed first, which also ends the router's NAT mappings (MASQUERADE drops them).
   */
  async changeRouterAddress(router: string, newIp: string): Promise<void> {
    const r = ROUTERS.find((x) => x.name === router);
    if (!r) throw new Error(`no NAT router ${router}`);
    if (!newIp.startsWith(`${PUB}.`)) throw new Error(`${newIp} is not on the public segment ${PUB}.0/24`);
    const ns = this.ns(router);
    await this.ipc(['-n', ns, 'addr', 'del', `${this.ip(router)}/24`, 'dev', 'eth0']);
    await this.ipc(['-n', ns, 'addr', 'add', `${newIp}/24`, 'dev', 'eth0']);
    this.addrs.set(router, newIp);
  }

  /** Moves a host to another address in its subnet (flush eth0, add, re-add the default route). */
  async changeAddress(host: string, newIp: string): Promise<void> {
    const old = this.ip(host);
    if (old.split('.').slice(0, 3).join('.') !== newIp.split('.').slice(0, 3).join('.')) throw new Error(`${newIp} is not in ${host}'s /24`);
    const ns = this.ns(host);
    await this.ipc(['-n', ns, 'addr', 'flush', 'dev', 'eth0']);
    await this.ipc(['-n', ns, 'addr', 'add', `${newIp}/24`, 'dev', 'eth0']);
    const r = this.routerOf(host);
    if (r) await this.ipc(['-n', ns, 'route', 'replace', 'default', 'via', `${ROUTERS.find((x) => x.name === r)!.lan}.1`]);
    this.addrs.set(host, newIp);
  }

  /**
   * Traffic of `proto` seen going from `from` straight to `to`'s public address (counted by an
   * iptables rule in from's router, or in from's own OUTPUT chain for a public host): direct
   * traffic between the two, as opposed to traffic relayed through a third node. Netfilter counts
   * socket buffers, and one UDP GSO send (the batched socket's run of equal-sized datagrams) is one
   * buffer carrying several datagrams: `bytes` counts them all, `packets` only the buffers.
   * The first call installs the rule and returns zeros.
   */
  async directTraffic(from: string, to: string, proto: 'udp' | 'tcp' = 'udp'): Promise<{ packets: number; bytes: number }> {
    const r = this.routerOf(from);
    const ns = this.ns(r ?? from), chain = r ? 'FORWARD' : 'OUTPUT';
    const tag = `d-${from}-${to}-${proto}`;
    // Behind a cone NAT the peer keeps its port, so its mapped port singles it out from its LAN neighbours.
    const dport = this.kind(to) === 'cone' ? ['--dport', String(this.nodePort(to))] : [];
    const match = [...(r ? ['-s', this.ip(from)] : []), '-d', this.publicIp(to), '-p', proto, ...dport, '-m', 'comment', '--comment', tag];
    if (!this.counters.has(tag)) { await this.sh(ns, ['iptables', '-I', chain, ...match]); this.counters.add(tag); return { packets: 0, bytes: 0 }; }
    const out = await this.exec(r ?? from, ['iptables', '-nvxL', chain]);
    const line = out.stdout.split('\n').find((l) => l.includes(`/* ${tag} */`));
    const [packets, bytes] = line ? line.trim().split(/\s+/).slice(0, 2).map(Number) : [0, 0];
    return { packets: packets!, bytes: bytes! };
  }

  /**
   * Routed messages that went straight from `from` to `to` (see directTraffic), counted from the
   * bytes so that GSO sends count every datagram: each routed message over a secure UDP edge has
   * at least ROUTED_UDP_MIN bytes of UDP payload, so bytes / ROUTED_UDP_MIN bounds their number
   * from above and n messages give at least n × ROUTED_UDP_MIN bytes.
   */
  async directMessages(from: string, to: string, proto: 'udp' | 'tcp' = 'udp'): Promise<number> {
    return Math.floor((await this.directTraffic(from, to, proto)).bytes / ROUTED_UDP_MIN);
  }

  /** Stops tracked processes, kills anything left in the namespaces, deletes them; idempotent. */
  destroy(): Promise<void> {
    this.destroying ??= tearDown(this, this.procs, this.created, this.dir);
    return this.destroying;
  }

  destroySync(): void { tearDownSync(this, this.procs, this.created, this.dir); }

  // ---- the overlay in the lab ----

  /** Extra NodeConfig XML and run_bootstrap_node arguments for every node (e.g. switches for relays). */
  /** Extra NodeConfig XML; by default relay upgrades are retried every 5 s (30 s in production) so the lab's waits stay short. */
  static nodeXml = process.env.BRUNET_NAT_NODE_XML ?? '<Relay><UpgradeInterval>5</UpgradeInterval></Relay>';
  static nodeArgs = (process.env.BRUNET_NAT_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  /** The node program (run_bootstrap_node's script; another one to try unreleased switches). */
  static runner = process.env.BRUNET_NAT_RUNNER ?? BIN.run;

  /** A NodeConfig with a UDP and a TCP listener on `port` and boot's UDP and TCP TAs as RemoteTAs. */
  writeConfig(name: string, port: number): string {
    const p = join(this.dir, `${name}.config`), boot = PUBLIC.boot!;
    writeFileSync(p, `<?xml version="1.0"?>
<NodeConfig>
  <BrunetNamespace>natrealm</BrunetNamespace>
  <EdgeListeners>
    <EdgeListener type="udp"><port>${port}</port></EdgeListener>
    <EdgeListener type="tcp"><port>${port}</port></EdgeListener>
  </EdgeListeners>
  <RemoteTAs>
    <Transport>brunet.udp://${boot}:${NAT_PORT_BASE}</Transport>
    <Transport>brunet.tcp://${boot}:${NAT_PORT_BASE}</Transport>
  </RemoteTAs>
  <XmlRpcManager><Enabled>true</Enabled><Port>10000</Port></XmlRpcManager>
  <Security><GroupSecret>nat lab group secret</GroupSecret></Security>
  <Dht><DataDirectory>memory</DataDirectory></Dht>
  ${NatLab.nodeXml}
</NodeConfig>
`);
    return p;
  }

  /** The UDP and TCP port of a host's (first) node: distinct per host, so a cone NAT keeps each. */
  nodePort(host: string): number { return host === 'boot' ? NAT_PORT_BASE : NAT_PORT_BASE + 1 + NatLab.hosts.indexOf(host); }

  /** Starts run_bootstrap_node on a host (`nodes` nodes; boot's first node listens on NAT_PORT_BASE). */
  startNode(host: string, nodes = 1): ChildProcess {
    const cfg = this.writeConfig(host, this.nodePort(host));
    return this.spawn(host, [process.execPath, NatLab.runner, cfg, '--nodes', String(nodes), '--log-level', 'warn', ...NatLab.nodeArgs],
      { logFile: join(this.dir, `${host}.log`) });
  }

  /** Runs control-API calls on a host's node (in parallel, in one process); one result per call. */
  async rpc(host: string, calls: RpcCall[], timeoutMs = 60_000): Promise<RpcResult[]> {
    const r = await this.exec(host, [process.execPath, '--input-type=module', '-e', RUNNER, join(ROOT, 'dist/src/control/client.js')],
      { timeoutMs, input: JSON.stringify(calls) });
    try { return JSON.parse(r.stdout) as RpcResult[]; } catch {
      return calls.map(() => ({ ok: false, error: `rpc runner failed (exit ${r.code}): ${r.stderr.trim().slice(-300)}`, ms: 0 }));
    }
  }

  /** One call; throws its error. */
  async call(host: string, method: string, params: unknown[], timeoutMs = 15_000): Promise<unknown> {
    const [r] = await this.rpc(host, [{ m: method, p: params, timeoutMs }], timeoutMs + 10_000);
    if (!r!.ok) throw new Error(`${host}: ${method}: ${r!.error}`);
    return r!.result;
  }

  /** Information.Info of a host's (first) node. */
  info(host: string): Promise<NodeInfoView> { return this.call(host, 'localproxy', ['Information.Info']) as Promise<NodeInfoView>; }
  /** Address and advertised TAs of a host's (first) node. */
  nodeInfo(host: string): Promise<{ address: string; tas: string[] }> { return this.call(host, 'localproxy', ['sys:link.GetNodeInfo']) as Promise<{ address: string; tas: string[] }>; }

  /** crawl (tools/crawl-lib) from boot: Brunet's statistics and the addresses found. */
  async crawl(): Promise<{ stats: Record<string, number>; nodes: string[] } | undefined> {
    const script = `const {crawl}=await import(${JSON.stringify(join(ROOT, 'dist/tools/crawl-lib.js'))});` +
      `const r=await crawl({timeoutMs:5000});console.log(JSON.stringify({stats:r.stats,nodes:[...r.nodes.keys()]}));`;
    const r = await this.exec('boot', [process.execPath, '--input-type=module', '-e', script], { timeoutMs: 30_000 });
    try { return JSON.parse(r.stdout); } catch { return undefined; }
  }

  /**
   * Asks two nodes to link to each other at the same moment (what Brunet's ConnectTo does:
   * both sides open an edge, so NAT mappings open on both ends): `a` runs sys:ctm.ConnectTo
   * locally with b's NodeInfo, and b gets the same request with a's NodeInfo routed to it.
   */
  async forceLink(a: string, b: string, type = 'structured.shortcut'): Promise<void> {
    const [ia, ib] = await Promise.all([this.nodeInfo(a), this.nodeInfo(b)]);
    const wire = (i: { address: string; tas: string[] }) => ({ a: { $base64: Buffer.from(addressBytes(i.address)).toString('base64') }, t: i.tas });
    await Promise.all([
      this.rpc(a, [{ m: 'localproxy', p: ['sys:ctm.ConnectTo', { type, target: wire(ib) }], timeoutMs: 40_000 }]),
      this.rpc(b, [{ m: 'localproxy', p: ['sys:ctm.ConnectTo', { type, target: wire(ia) }], timeoutMs: 40_000 }]),
    ]);
  }
}

/** Decodes a brunet:node: address to its 20 bytes (RFC 4648 base32, as Brunet writes it). */
export function addressBytes(key: string): Uint8Array {
  const body = key.replace(/^brunet:node:/, '');
  const A = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0, acc = 0;
  const out: number[] = [];
  for (const ch of body.toUpperCase()) {
    const v = A.indexOf(ch);
    if (v < 0) throw new Error(`bad address ${key}`);
    acc = (acc << 5) | v; bits += 5;
    if (bits >= 8) { out.push((acc >> (bits - 8)) & 0xff); bits -= 8; }
  }
  return Uint8Array.from(out);
}

export interface NodeInfoView { udp: number; tcp: number; tunnel: number; cons: number; localips: string[]; neighbors: Record<string, string>; state: string; [k: string]: unknown }
/** A control-API call (method localproxy/proxy/listNodes), or with repeatMs, `par` loops of it for that long. */
export interface RpcCall { m: string; p: unknown[]; timeoutMs?: number; repeatMs?: number; par?: number }
export interface RpcResult { ok: boolean; result?: unknown; error?: string; ms: number; count?: number; failed?: number }

// Runs in the host's namespace: reads calls from stdin, prints results as JSON.
const RUNNER = `const {ControlClient}=await import(process.argv[1]);
let s='';for await (const d of process.stdin) s+=d;
const calls=JSON.parse(s);const c=new ControlClient(10000,'127.0.0.1',128);
const one=async(x)=>{const t0=performance.now();try{const r=await c.call(x.m,x.p,x.timeoutMs??15000);return {ok:true,result:r,ms:performance.now()-t0}}catch(e){return {ok:false,error:String(e.message),ms:performance.now()-t0}}};
const loop=async(x)=>{const t0=performance.now(),end=t0+x.repeatMs;let n=0,f=0,err;await Promise.all(Array.from({length:x.par??1},async()=>{while(performance.now()<end){const r=await one(x);if(r.ok)n++;else{f++;err=r.error}}}));return {ok:f===0,count:n,failed:f,error:err,ms:performance.now()-t0}};
const out=await Promise.all(calls.map((x)=>x.repeatMs?loop(x):one(x)));c.close();
process.stdout.write(JSON.stringify(out,(k,v)=>v instanceof Uint8Array?Buffer.from(v).toString('base64'):v));`;

/** Starts the bootstrap overlay (boot, `bootNodes` nodes) and one member per MEMBERS host; waits for the ring. */
export async function startNatOverlay(lab: NatLab, o: { bootNodes?: number; members?: readonly string[]; timeoutMs?: number } = {}): Promise<{ total: number; waitMs: number; procs: Map<string, ChildProcess> }> {
  const bootNodes = o.bootNodes ?? 4, members = o.members ?? MEMBERS;
  const boot = lab.startNode('boot', bootNodes);
  await waitFor(() => lab.call('boot', 'localproxy', ['sys:link.Ping', 1], 2000).then(() => true, () => boot.exitCode !== null), 20_000, 'bootstrap control API', 300);
  if (boot.exitCode !== null) throw new Error('bootstrap overlay exited; see its log');
  await waitFor(async () => { const c = await lab.crawl(); return c?.stats['Total Nodes'] === bootNodes && c.stats.Consistency === 1; }, 30_000, 'bootstrap ring', 500);
  const t0 = Date.now();
  const procs = members.map((h) => lab.startNode(h));
  const total = bootNodes + members.length;
  await waitFor(async () => {
    if (procs.some((p) => p.exitCode !== null)) throw new Error(`a member exited: ${members.filter((_, i) => procs[i]!.exitCode !== null).join(', ')}`);
    const c = await lab.crawl();
    return c?.stats['Total Nodes'] === total && c.stats.Consistency === 1;
  }, o.timeoutMs ?? 60_000, `a consistent ring of ${total}`, 1000).catch(() => {});
  return { total, waitMs: Date.now() - t0, procs: new Map(members.map((h, i) => [h, procs[i]!])) };
}

/** null if the lab can run and iptables is installed (tools/test-deps.sh installs it), else the reason. */
export function natLabUnavailableReason(): string | null {
  return labUnavailableReason() ?? missingCommandsReason(['iptables']);
}
