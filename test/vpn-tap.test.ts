// The TAP addon end to end. All traffic stays inside a network namespace made here: a child
// Node process inside it drives a TapDevice over JSON lines on stdin/stdout, while this
// process plays the fake peer (builds frames, checks the kernel's replies).
// Needs root and /dev/net/tun: skipped with a reason outside CI, a failure under CI=true.
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { TapDevice, TapError, tapUnavailableReason } from '../src/vpn/tap.js';
import { readableBuild } from './helpers/readable-build.js';

const ROOT = resolve(import.meta.dirname, '..');
const NS = `taptest${process.pid}`;
const DEV = `tp${process.pid}`.slice(0, 15);
const TAP_IP = '10.213.0.1';
const PEER_IP = '10.213.0.2';
const PEER_MAC = Buffer.from('020000000002', 'hex');
const BROADCAST = Buffer.alloc(6, 0xff);
const inCI = !!process.env.CI && !['0', 'false'].includes(process.env.CI.toLowerCase());

function sh(cmd: string, args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, out: (r.stdout ?? '') + (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

function deleteNs(): void {
  sh('ip', ['netns', 'del', NS]);
}

function prerequisites(): string | null {
  const why = tapUnavailableReason();
  if (why) return why;
  if (!sh('ip', ['-V']).ok) return 'iproute2 (ip) is not installed';
  const add = sh('ip', ['netns', 'add', NS]);
  if (!add.ok) return `cannot create a network namespace: ${add.out.trim().split('\n')[0]}`;
  process.once('exit', deleteNs); // in case teardown never runs (killed on timeout)
  t.teardown(deleteNs);
  return null;
}

// The child: a JSON-lines front end over one TapDevice, loaded from a world-readable copy of
// the compiled package (helpers/readable-build.ts) without tap's loaders, so that it also runs
// as nobody when the clone sits in a directory only root can enter.
const AGENT = `
import { createInterface } from 'node:readline';
const { TapDevice, tapUnavailableReason } = await import(process.env.TAP_MODULE);
const { advertisedHosts } = await import(process.env.IP_MODULE);
let dev;
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const err = (e) => ({ name: e.name, message: e.message });
const ops = {
  reason: () => tapUnavailableReason(),
  open: (a) => { dev = TapDevice.open(a); return { name: dev.name, mac: [...dev.mac] }; },
  tryOpen: (a) => { try { TapDevice.open(a).close(); return null; } catch (e) { return err(e); } },
  setMtu: (a) => dev.setMtu(a),
  setIPv4: (a) => dev.setIPv4(a[0], a[1]),
  setIPv6: (a) => dev.setIPv6(a[0], a[1]),
  advertised: (a) => advertisedHosts(a),
  up: () => dev.up(),
  start: () => dev.start(
    (fs) => out({ ev: 'frames', frames: fs.map((f) => f.toString('hex')) }),
    (e) => out({ ev: 'error', error: err(e) })),
  write: (a) => dev.write(Buffer.from(a, 'hex')),
  writeBatch: (a) => dev.writeBatch(a.map((h) => Buffer.from(h, 'hex'))),
  stats: () => dev.stats,
  close: () => dev.close(),
};
const rl = createInterface({ input: process.stdin });
rl.on('line', (l) => {
  const { id, op, arg } = JSON.parse(l);
  try { out({ id, ok: true, value: ops[op](arg) ?? null }); } catch (e) { out({ id, ok: false, error: err(e) }); }
});
rl.on('close', () => { dev?.close(); process.exit(0); });
out({ ev: 'ready' });
`;

let build: string | undefined;
/** The agents' copy of the build, made once and removed when this file's tests end. */
function agentBuild(): string {
  if (build) return build;
  const b = readableBuild(ROOT);
  process.once('exit', b.remove);
  t.teardown(b.remove);
  return (build = b.dir);
}

interface Reply { ok: boolean; value?: any; error?: { name: string; message: string } }
interface Event { ev: string; frames?: string[]; error?: { name: string; message: string } }

class Agent {
  readonly child: ChildProcess;
  readonly events: Event[] = [];
  #pending = new Map<number, (r: Reply) => void>();
  #next = 1;
  #stderr = '';

  /** prefix: commands run inside the namespace before node (e.g. dropping privileges). */
  constructor(tt: { teardown(fn: () => void): void }, prefix: string[] = []) {
    const dir = agentBuild();
    // env -u: tap's process-info hook puts its loader (in the clone) back into NODE_OPTIONS of every spawn.
    this.child = spawn('ip', ['netns', 'exec', NS, 'env', '-u', 'NODE_OPTIONS', ...prefix, process.execPath, '--input-type=module', '-e', AGENT], {
      cwd: dir,
      env: { ...process.env, TAP_MODULE: pathToFileURL(join(dir, 'dist/src/vpn/tap.js')).href,
        IP_MODULE: pathToFileURL(join(dir, 'dist/src/transport/ip.js')).href },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stderr!.on('data', (d) => { this.#stderr += d; });
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      let m: Reply & Event & { id?: number };
      try { m = JSON.parse(l); } catch { this.#stderr += l + '\n'; return; }
      if (m.id === undefined) this.events.push(m);
      else this.#pending.get(m.id)?.(m);
    });
    tt.teardown(() => this.stop());
  }

  stop(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }

  get stderr(): string { return this.#stderr; }

  call(op: string, arg?: unknown, ms = 10_000): Promise<Reply> {
    const id = this.#next++;
    return new Promise((res) => {
      const timer = setTimeout(() => { this.#pending.delete(id); res({ ok: false, error: { name: 'Timeout', message: `${op}: no reply in ${ms} ms; stderr: ${this.#stderr}` } }); }, ms);
      this.#pending.set(id, (r) => { clearTimeout(timer); res(r); });
      this.child.stdin!.write(JSON.stringify({ id, op, arg }) + '\n');
    });
  }

  async waitFor(pred: () => boolean, ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end || this.child.exitCode !== null) return pred();
      await new Promise((r) => setTimeout(r, 20));
    }
    return true;
  }

  ready(): Promise<boolean> { return this.waitFor(() => this.events.some((e) => e.ev === 'ready'), 15_000); }

  batches(): Buffer[][] {
    return this.events.filter((e) => e.ev === 'frames').map((e) => e.frames!.map((h) => Buffer.from(h, 'hex')));
  }
}

// --- frames -----------------------------------------------------------------------

const ip4 = (s: string): Buffer => Buffer.from(s.split('.').map(Number));

function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function ether(dst: Uint8Array, src: Uint8Array, type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(14);
  h.set(dst, 0);
  h.set(src, 6);
  h.writeUInt16BE(type, 12);
  return Buffer.concat([h, payload]);
}

function arpRequest(targetIp: string): Buffer {
  const a = Buffer.alloc(28);
  a.writeUInt16BE(1, 0); // Ethernet
  a.writeUInt16BE(0x0800, 2);
  a[4] = 6;
  a[5] = 4;
  a.writeUInt16BE(1, 6); // request
  a.set(PEER_MAC, 8);
  a.set(ip4(PEER_IP), 14);
  a.set(ip4(targetIp), 24);
  return ether(BROADCAST, PEER_MAC, 0x0806, a);
}

function echoRequest(dstMac: Uint8Array, seq: number): Buffer {
  const icmp = Buffer.alloc(8 + 32, 0x5a);
  icmp[0] = 8;
  icmp[1] = 0;
  icmp.writeUInt16BE(0, 2);
  icmp.writeUInt16BE(process.pid & 0xffff, 4);
  icmp.writeUInt16BE(seq, 6);
  icmp.writeUInt16BE(checksum(icmp), 2);
  const iph = Buffer.alloc(20);
  iph[0] = 0x45;
  iph.writeUInt16BE(20 + icmp.length, 2);
  iph.writeUInt16BE(seq, 4);
  iph[8] = 64;
  iph[9] = 1; // ICMP
  iph.set(ip4(PEER_IP), 12);
  iph.set(ip4(TAP_IP), 16);
  iph.writeUInt16BE(checksum(iph), 10);
  return ether(dstMac, PEER_MAC, 0x0800, Buffer.concat([iph, icmp]));
}

/** The sequence number of an ICMP echo reply from the TAP's IP to the peer, else undefined. */
function echoReplySeq(f: Buffer): number | undefined {
  if (f.length < 42 || f.readUInt16BE(12) !== 0x0800 || f[23] !== 1) return undefined;
  const ihl = (f[14]! & 0x0f) * 4;
  const icmp = 14 + ihl;
  if (!f.subarray(0, 6).equals(PEER_MAC) || f.subarray(26, 30).join('.') !== TAP_IP || f.subarray(30, 34).join('.') !== PEER_IP) return undefined;
  if (f[icmp] !== 0 || f.readUInt16BE(icmp + 4) !== (process.pid & 0xffff)) return undefined;
  return f.readUInt16BE(icmp + 6);
}

function isArpReply(f: Buffer, mac: Buffer): boolean {
  return f.length >= 42 && f.readUInt16BE(12) === 0x0806 && f.readUInt16BE(20) === 2 &&
    f.subarray(22, 28).equals(mac) && f.subarray(28, 32).join('.') === TAP_IP &&
    f.subarray(32, 38).equals(PEER_MAC) && f.subarray(38, 42).join('.') === PEER_IP;
}

function ipJson(args: string[]): any[] | undefined {
  const r = sh('ip', ['-n', NS, '-j', ...args]);
  if (!r.ok) return undefined;
  try { return JSON.parse(r.out) as any[]; } catch { return undefined; }
}

// --- tests ------------------------------------------------------------------------

const missing = prerequisites();
if (missing !== null) {
  if (inCI) t.fail(`TAP test prerequisites missing under CI: ${missing}`);
  else t.plan(0, `skipped: ${missing}`);
} else {
  t.test('bad names are refused before anything is created', async (t) => {
    t.throws(() => TapDevice.open({ name: 'no/slash' }), { name: 'TapError', message: /invalid interface name 'no\/slash'/ });
    t.throws(() => TapDevice.open({ name: 'x'.repeat(16) }), TapError);
    t.throws(() => TapDevice.open({ name: '' }), TapError);
  });

  t.test('a TAP in a namespace: config, kernel replies in batches, close', async (t) => {
    sh('ip', ['netns', 'exec', NS, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    const a = new Agent(t);
    t.ok(await a.ready(), `agent started in ${NS}`);
    t.equal((await a.call('reason')).value, null, 'tapUnavailableReason() is null in the namespace');

    const opened = await a.call('open', { name: DEV, mtu: 1400 });
    t.ok(opened.ok, `open ${opened.error?.message ?? ''}`);
    if (!opened.ok) return;
    t.equal(opened.value.name, DEV, 'the device has the requested name');
    const mac = Buffer.from(opened.value.mac as number[]);
    t.equal(mac.length, 6, 'MAC has 6 bytes');
    t.ok(mac.some((b) => b !== 0) && (mac[0]! & 1) === 0, 'MAC is a non-zero unicast address');

    let link = ipJson(['link', 'show', 'dev', DEV])?.[0];
    t.equal(link?.mtu, 1400, 'mtu from open() is visible');
    t.equal(link?.address, [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':'), 'kernel MAC matches');

    t.ok((await a.call('setIPv4', [TAP_IP, 24])).ok, 'setIPv4');
    t.ok((await a.call('up')).ok, 'up');
    t.ok((await a.call('setMtu', 1300)).ok, 'setMtu');
    link = ipJson(['addr', 'show', 'dev', DEV])?.[0];
    t.equal(link?.mtu, 1300, 'new mtu is visible');
    t.ok(link?.flags?.includes('UP'), 'interface is up');
    const inet = (link?.addr_info as any[] | undefined)?.find((x) => x.family === 'inet');
    t.match(inet, { local: TAP_IP, prefixlen: 24, broadcast: '10.213.0.255' }, 'address, prefix and broadcast');

    const bad = await a.call('setMtu', 10);
    t.match(bad, { ok: false, error: { name: 'TapError', message: `SIOCSIFMTU ${DEV} 10: invalid argument` } }, 'bad mtu is a one-line TapError');
    t.match((await a.call('tryOpen', { name: DEV })).value, { name: 'TapError', message: `TUNSETIFF ${DEV}: device busy` }, 'second open of the same name');
    t.match((await a.call('tryOpen', { name: 'lo' })).value, { name: 'TapError', message: /^TUNSETIFF lo: invalid argument/ }, 'name of a non-TAP interface');

    // The fake peer gets a permanent neighbour entry, so replies need no ARP of their own.
    t.ok(sh('ip', ['-n', NS, 'neigh', 'replace', PEER_IP, 'lladdr', '02:00:00:00:00:02', 'dev', DEV, 'nud', 'permanent']).ok, 'static neighbour');

    // Queue 100 requests before reading starts, so the replies wait in the device and the
    // first readiness event has more than one batch's worth.
    const N = 100;
    const pings = Array.from({ length: N }, (_, i) => echoRequest(mac, i).toString('hex'));
    t.equal((await a.call('writeBatch', pings)).value, N, 'writeBatch accepted every frame');
    await new Promise((r) => setTimeout(r, 300));
    t.ok((await a.call('start')).ok, 'start');
    const seen = new Set<number>();
    const replies = (): number => { seen.clear(); for (const b of a.batches()) for (const f of b) { const s = echoReplySeq(f); if (s !== undefined) seen.add(s); } return seen.size; };
    t.ok(await a.waitFor(() => replies() === N, 10_000), `all ${N} echo replies read back (got ${seen.size})`);
    const sizes = a.batches().map((b) => b.length);
    t.equal(sizes[0], 64, 'first batch stops at the 64-frame limit');
    t.ok(sizes.length >= 2 && sizes.every((n) => n >= 1 && n <= 64), `batches of 1..64 frames: ${sizes.join(',')}`);

    // One frame through write(): the kernel answers an ARP request for its address.
    t.equal((await a.call('write', arpRequest(TAP_IP).toString('hex'))).value, true, 'write() accepted the ARP request');
    t.ok(await a.waitFor(() => a.batches().some((b) => b.some((f) => isArpReply(f, mac))), 5000), 'kernel ARP reply read back');

    let stats = (await a.call('stats')).value;
    t.match(stats, { framesOut: N + 1, writeDrops: 0 }, 'write counters');
    t.equal(stats.bytesOut, N * 74 + 42, 'bytesOut');
    t.ok(stats.framesIn >= N + 1 && stats.bytesIn >= N * 74, 'read counters');

    // A frame the kernel refuses (shorter than an Ethernet header) is dropped, not thrown.
    t.equal((await a.call('write', '0102030405')).value, false, 'runt frame dropped');
    t.equal((await a.call('writeBatch', ['0102', echoRequest(mac, 999).toString('hex')])).value, 1, 'writeBatch counts only accepted frames');
    stats = (await a.call('stats')).value;
    t.match(stats, { framesOut: N + 2, writeDrops: 2 }, 'drops counted');
    t.ok(await a.waitFor(() => replies() === N + 1, 5000), 'the batch write after a drop still went through');

    t.ok((await a.call('close')).ok, 'close');
    t.notOk(sh('ip', ['-n', NS, 'link', 'show', 'dev', DEV]).ok, 'device is gone after close()');
    t.ok((await a.call('close')).ok, 'close is idempotent');
    t.equal((await a.call('write', pings[0])).value, false, 'write after close is a drop');
    t.match(await a.call('start'), { ok: false, error: { name: 'TapError', message: 'tap device is closed' } }, 'start after close');
    t.equal(a.stderr, '', 'agent wrote nothing to stderr');
  });

  t.test('IPv6 on the TAP; TAP addresses are not advertised to the overlay', async (t) => {
    sh('ip', ['netns', 'exec', NS, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=0', 'net.ipv6.conf.default.disable_ipv6=0']);
    const a = new Agent(t);
    t.ok(await a.ready(), 'agent started');
    const name = `${DEV.slice(0, 13)}6`;
    t.ok((await a.call('open', { name, mtu: 1352 })).ok, 'open');
    t.ok((await a.call('setIPv4', ['10.213.1.1', 24])).ok, 'setIPv4');
    t.ok((await a.call('up')).ok, 'up');
    const r = await a.call('setIPv6', ['fd12:3456:789a:0::ad5:101', 64]);
    t.ok(r.ok, `setIPv6 ${r.error?.message ?? ''}`);
    const inet6 = (ipJson(['addr', 'show', 'dev', name])?.[0]?.addr_info as any[] | undefined)?.filter((x) => x.family === 'inet6');
    t.ok(inet6?.some((x) => x.local === 'fd12:3456:789a::ad5:101' && x.prefixlen === 64), `the member address is on the TAP (${JSON.stringify(inet6?.map((x) => x.local))})`);
    t.match(await a.call('setIPv6', ['fd12::zz', 64]), { ok: false, error: { name: 'TapError', message: 'invalid IPv6 address fd12::zz/64' } }, 'a bad address is a one-line TapError');
    t.notOk(((await a.call('advertised', {})).value as string[]).includes('10.213.1.1'), 'a TAP\'s addresses are not advertised by default');
    t.same((await a.call('advertised', { devices: [name] })).value, ['10.213.1.1'], 'unless the TAP is named in DevicesToBind');
    t.ok((await a.call('close')).ok, 'close');
  });

  t.test('deleting the interface from outside ends reading with an error', async (t) => {
    const a = new Agent(t);
    t.ok(await a.ready(), 'agent started');
    const name = `${DEV.slice(0, 13)}d`;
    t.ok((await a.call('open', { name })).ok, 'open');
    t.ok((await a.call('start')).ok, 'start');
    t.ok(sh('ip', ['-n', NS, 'link', 'del', name]).ok, 'ip link del');
    t.ok(await a.waitFor(() => a.events.some((e) => e.ev === 'error'), 5000), 'onError called');
    t.match(a.events.find((e) => e.ev === 'error')?.error, { name: 'TapError', message: `read ${name}: the interface was deleted` });
  });

  t.test('clear errors without the capability or the device', async (t) => {
    // util-linux is installed by tools/test-deps.sh: without it, skipped outside CI, a failure under CI.
    const without = (cmd: string) => (sh(cmd, ['--version']).ok ? false : `${cmd} (util-linux) not installed`);
    if (inCI) for (const c of ['setpriv', 'unshare']) if (without(c)) t.fail(`${without(c)} under CI`);
    const setpriv = without('setpriv');
    t.test('no CAP_NET_ADMIN', { skip: setpriv }, async (t) => {
      const a = new Agent(t, ['setpriv', '--inh-caps=-net_admin', '--bounding-set=-net_admin']);
      t.ok(await a.ready(), 'agent started without CAP_NET_ADMIN');
      t.match((await a.call('reason')).value, /CAP_NET_ADMIN/, 'tapUnavailableReason explains');
      t.match((await a.call('tryOpen', { name: DEV })).value, { name: 'TapError', message: `TUNSETIFF ${DEV}: operation not permitted (run as root or with CAP_NET_ADMIN)` });
    });
    t.test('unprivileged user', { skip: setpriv }, async (t) => {
      const a = new Agent(t, ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all']);
      t.ok(await a.ready(), `agent started as nobody ${a.stderr}`);
      // Mode 0600 refuses the open; a 0666 device node refuses TUNSETIFF instead.
      t.match((await a.call('tryOpen', { name: DEV })).value, { name: 'TapError', message: /(permission denied|not permitted) \(run as root or with CAP_NET_ADMIN\)$/ });
    });
    t.test('no /dev/net/tun', { skip: without('unshare') }, async (t) => {
      const a = new Agent(t, ['unshare', '--mount', 'sh', '-c', 'mount -t tmpfs none /dev/net && exec "$@"', 'sh']);
      t.ok(await a.ready(), `agent started with /dev/net hidden ${a.stderr}`);
      const msg = '/dev/net/tun is missing: load the tun module (modprobe tun)';
      t.equal((await a.call('reason')).value, msg, 'tapUnavailableReason explains');
      t.match((await a.call('tryOpen', { name: DEV })).value, { name: 'TapError', message: msg });
    });
  });
}
