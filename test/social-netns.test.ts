// SocialVPN end to end in network namespaces (root): the seed's triangle. Users Alice, Bob and
// Carol, each with a device in its own namespace, Bob with a second device (a copy of his user
// key); friendships Alice–Bob and Bob–Carol, all on one open overlay. Alice's direct path to
// Bob's desktop is blocked, so that pair goes over a relay edge through a third node, where a
// capture must hold no plaintext. Names resolve through each device's own responder
// (/etc/netns/<ns>/resolv.conf). The lab, and everything in it, is removed afterwards.
// Timing-sensitive (traffic stops within 5 s of a friend's removal): runs alone (tools/run-tests.sh).
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { groupvpn, hostConfig, startBootstrap } from '../bench/lab/ipop.js';
import { Lab, pingArgv, requireLab, waitFor } from '../bench/lab/netns.js';
import { deviceConfig, socialvpn } from '../bench/lab/social.js';
import { tcpTransfer } from './helpers/transfer.js';

type Host = 'alice' | 'bob' | 'bob2' | 'carol';
interface Peer { user: string; device: string; name: string; ip4: string; status: string; path: string }
interface Status { self: { user: string; device: string; ip4: string }; peers: Peer[] }

// A crafted UDP packet for every address given, written straight into the TAP (AF_PACKET).
const CRAFT = `import socket,struct,sys
def csum(b):
    if len(b)%2: b+=b'\\0'
    s=sum(struct.unpack('!%dH'%(len(b)//2),b)); s=(s>>16)+(s&0xffff); s+=s>>16; return (~s)&0xffff
dev=sys.argv[1]; src=socket.inet_aton('172.31.0.1')
s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW); s.bind((dev,0)); mac=s.getsockname()[4]
for d in sys.argv[2:]:
    dst=socket.inet_aton(d); data=b'crafted toward carol'
    udp=struct.pack('!HHHH',4242,9999,8+len(data),0)+data
    ip=struct.pack('!BBHHHBBH4s4s',0x45,0,20+len(udp),1,0,64,17,0,src,dst)
    ip=ip[:10]+struct.pack('!H',csum(ip))+ip[12:]
    s.send(b'\\xfe\\x53\\x56\\x50\\x4e\\x01'+mac+b'\\x08\\x00'+ip+udp)
print('sent',len(sys.argv)-2)`;
const LISTEN = `const s=require('dgram').createSocket('udp4');let n=0;s.on('message',()=>{n++});s.bind(9999,()=>console.log('listening'));setTimeout(()=>{console.log('received '+n);process.exit(0)},Number(process.argv[1]))`;
// A UDP echo on the device's own address, and a client that prints the echo and its source.
const ECHO = `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>{console.log('from '+r.address);s.send(m,r.port,r.address)});s.bind(9998,'172.31.0.1',()=>console.log('listening'));setTimeout(()=>process.exit(0),8000)`;
const ASK = `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>{console.log('echo '+m+' from '+r.address);process.exit(0)});s.send(Buffer.from('svpn-udp'),9998,process.argv[1]);setTimeout(()=>process.exit(1),3000)`;

t.test('SocialVPN in network namespaces', async (t) => {
  if (!requireLab(t, ['ping', 'iptables', 'tcpdump', 'python3', 'getent'])) return;
  const hosts: Host[] = ['alice', 'bob', 'bob2', 'carol'];
  const lab = await Lab.create('svpn', ['boot', ...hosts]);
  t.teardown(() => lab.destroy());
  // Each device's names resolve through its own responder on 172.31.0.1 (ip netns exec binds this file).
  for (const h of hosts) {
    const d = `/etc/netns/${lab.ns(h)}`;
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'resolv.conf'), 'nameserver 172.31.0.1\noptions timeout:1 attempts:1\n');
    t.teardown(() => rmSync(d, { recursive: true, force: true }));
  }
  await startBootstrap(lab, 'boot', 16, null);
  const bootIp = lab.ip('boot');
  const names: Record<Host, [string, string]> = { alice: ['alice', 'laptop'], bob: ['bob', 'desktop'], bob2: ['bob', 'phone'], carol: ['carol', 'tablet'] };
  const keyOf = (h: Host) => join(lab.dir, h === 'bob2' ? 'bob-copy.key' : `${names[h][0]}.key`);
  // Bob's phone runs without TAP offload: it must take the others' super-packets as ordinary segments.
  const cfg = Object.fromEntries(hosts.map((h) => [h, deviceConfig(lab.dir, h, { bootIp, userKeyFile: keyOf(h), deviceName: names[h][1], offload: h !== 'bob2' })])) as Record<Host, string>;
  const sv = (h: Host, ...args: string[]) => socialvpn(lab, h, [...args, '-c', cfg[h]]);

  // Identities and friend codes: Bob's phone is Bob's key, copied.
  // The devices' CLI calls run at once (each device has its own key, config and state); one device's in order.
  const users = ['alice', 'bob', 'carol'] as const;
  const inits = await Promise.all(users.map((h) => sv(h, 'init', '--user', names[h][0])));
  for (const [i, r] of inits.entries()) t.equal(r.code, 0, `init ${users[i]}`);
  copyFileSync(keyOf('bob'), join(lab.dir, 'bob-copy.key'));
  const [alice, bob, carol] = await Promise.all(users.map(async (h) => (await sv(h, 'id')).stdout.trim()));
  const codes = { alice: alice!, bob: bob!, carol: carol! };
  t.match(codes.bob, /^svpn1:bob:\S+$/, `Bob's friend code is one line: ${codes.bob}`);
  const friends: Array<[Host, Array<'alice' | 'bob' | 'carol'>]> = [['alice', ['bob']], ['bob', ['alice', 'carol']], ['bob2', ['alice', 'carol']], ['carol', ['bob']]];
  const added = await Promise.all(friends.map(async ([h, fs]) => {
    const codesOut: Array<number | null> = [];
    for (const f of fs) codesOut.push((await sv(h, 'friend', 'add', codes[f])).code);
    return codesOut;
  }));
  for (const [i, [h, fs]] of friends.entries()) fs.forEach((f, k) => t.equal(added[i]![k], 0, `${h} adds ${f}`));
  // Alice's device cannot reach Bob's desktop directly: that pair must use a relay edge.
  for (const chain of ['OUTPUT -d', 'INPUT -s']) {
    const [c, dir] = chain.split(' ');
    t.equal((await lab.exec('alice', ['iptables', '-A', c!, dir!, lab.ip('bob'), '-j', 'DROP'])).code, 0, `block alice ${chain} bob`);
  }

  const started = await Promise.all(hosts.map((h) => sv(h, 'start')));
  for (const [i, r] of started.entries()) t.equal(r.code, 0, `socialvpn start on ${hosts[i]}: ${r.stdout}${r.stderr}`);
  if (started.some((r) => r.code !== 0)) return;
  const status = async (h: Host): Promise<Status | undefined> => {
    const r = await sv(h, 'status', '--json');
    try { return JSON.parse(r.stdout) as Status; } catch { return undefined; }
  };
  const onlineAt = async (h: Host) => ((await status(h))?.peers ?? []).filter((p) => p.status === 'online').map((p) => p.name).sort();
  const want: Record<Host, string[]> = {
    alice: ['desktop.bob.svpn', 'phone.bob.svpn'], bob: ['laptop.alice.svpn', 'tablet.carol.svpn'],
    bob2: ['laptop.alice.svpn', 'tablet.carol.svpn'], carol: ['desktop.bob.svpn', 'phone.bob.svpn'],
  };
  const all = await waitFor(async () => {
    for (const h of hosts) if (JSON.stringify(await onlineAt(h)) !== JSON.stringify(want[h])) return false;
    return true;
  }, 60_000, 'friends online', 1000).then(() => true, () => false);
  for (const h of hosts) t.same(await onlineAt(h), want[h], `${h} sees exactly its friends' devices online`);
  if (!all) return;
  const aliceView = (await status('alice'))!;
  t.same(aliceView.self, { user: 'alice', device: 'laptop', ip4: '172.31.0.1' }, 'status --json: self');
  const desktop = aliceView.peers.find((p) => p.device === 'desktop')!;
  t.same(Object.keys(desktop).slice(0, 6), ['user', 'device', 'name', 'ip4', 'status', 'path'], 'status --json: peer fields');
  t.equal(desktop.path, 'relayed', 'Alice reaches Bob\'s desktop over a relay edge');

  await t.test('Alice pings both of Bob\'s devices by name and by local IP', async (t) => {
    for (const p of aliceView.peers) {
      t.equal((await lab.exec('alice', pingArgv(p.name, { count: 2, waitS: 2 }), { timeoutMs: 15_000 })).code, 0, `ping ${p.name}`);
      t.equal((await lab.exec('alice', pingArgv(p.ip4, { count: 2, waitS: 2 }), { timeoutMs: 15_000 })).code, 0, `ping ${p.ip4}`);
    }
    t.match((await lab.exec('alice', ['getent', 'hosts', 'bob.svpn'])).stdout, /^172\.31\.\d+\.\d+\s+bob\.svpn/, 'bob.svpn names one of his devices');
    t.match((await lab.exec('alice', ['getent', 'hosts', desktop.ip4])).stdout, /desktop\.bob\.svpn/, 'the reverse (PTR) name of a local IP');
  });

  await t.test('Bob reaches Alice and Carol', async (t) => {
    for (const n of ['laptop.alice.svpn', 'tablet.carol.svpn']) t.equal((await lab.exec('bob', pingArgv(n, { count: 2, waitS: 2 }), { timeoutMs: 15_000 })).code, 0, `ping ${n}`);
  });

  await t.test('UDP crosses both ways, with each side seeing the other at its local IP', async (t) => {
    const phone = aliceView.peers.find((p) => p.device === 'phone')!;
    const aliceAtPhone = (await status('bob2'))!.peers.find((p) => p.user === 'alice')!;
    const echo = lab.spawn('bob2', [process.execPath, '-e', ECHO]);
    await waitFor(() => /listening/.test(lab.output(echo)), 5000, 'echo server');
    const r = await lab.exec('alice', [process.execPath, '-e', ASK, phone.ip4], { timeoutMs: 5000 });
    t.equal(r.code, 0, `an answer: ${r.stdout.trim()}`);
    t.equal(r.stdout.trim(), `echo svpn-udp from ${phone.ip4}`, 'Alice sees the echo come from the phone\'s local IP');
    t.match(lab.output(echo), new RegExp(`from ${aliceAtPhone.ip4.replace(/\./g, '\\.')}\\b`), `the phone sees Alice at ${aliceAtPhone.ip4}`);
  });

  await t.test('Alice has no name and no address for Carol; crafted packets do not arrive', async (t) => {
    t.not((await lab.exec('alice', ['getent', 'hosts', 'tablet.carol.svpn'])).code, 0, 'no name for Carol\'s device');
    t.notOk(aliceView.peers.some((p) => p.user === 'carol'), 'no peer of Carol\'s in Alice\'s status');
    const listener = lab.spawn('carol', [process.execPath, '-e', LISTEN, '4000']);
    await waitFor(() => /listening/.test(lab.output(listener)), 5000, 'listener');
    const targets = ['172.31.0.1', lab.ip('carol'), ...aliceView.peers.map((p) => p.ip4), '172.31.0.2', '172.31.255.254', '172.31.77.77'];
    const craft = await lab.exec('alice', ['python3', '-c', CRAFT, 'svpn0', ...targets], { timeoutMs: 10_000 });
    t.equal(craft.code, 0, `crafted: ${craft.stdout.trim()} ${craft.stderr}`);
    await waitFor(() => /received \d+/.test(lab.output(listener)), 8000, 'listener done').catch(() => {});
    t.match(lab.output(listener), /received 0/, 'nothing reached Carol');
  });

  await t.test('an 8 MB TCP transfer over the relay edge arrives intact', async (t) => {
    const x = await tcpTransfer(lab, 'alice', 'bob', desktop.ip4, 8, 90_000, '172.31.0.1');
    t.equal(x.code, 0, x.stderr);
    t.equal(x.receivedBytes, 8 * 1024 * 1024, 'all bytes');
    t.equal(x.receivedDigest, x.sentDigest, 'same SHA-256');
  });

  await t.test('Bob\'s phone, without offload, exchanges TCP streams with Alice both ways', async (t) => {
    const phone = aliceView.peers.find((p) => p.device === 'phone')!;
    const aliceAtPhone = (await status('bob2'))!.peers.find((p) => p.user === 'alice')!;
    for (const [from, to, ip] of [['alice', 'bob2', phone.ip4], ['bob2', 'alice', aliceAtPhone.ip4]] as Array<[Host, Host, string]>) {
      const x = await tcpTransfer(lab, from, to, ip, 4, 60_000, '172.31.0.1');
      t.equal(x.code, 0, x.stderr);
      t.equal(x.receivedDigest, x.sentDigest, `${from} → ${to}: ${x.receivedBytes} bytes, same SHA-256`);
    }
  });

  await t.test('a capture on every other node, among them the relaying one, holds no plaintext', async (t) => {
    // The relay edge's forwarders are nodes linked to both ends: a bootstrap node, Bob's phone or
    // Carol's device. Each of those namespaces captures; together they saw the relayed pings.
    const watchers = ['boot', 'bob2', 'carol'] as const;
    const pcaps = watchers.map((h) => join(lab.dir, `${h}.pcap`));
    const dumps = watchers.map((h, i) => lab.spawn(h, ['tcpdump', '-i', 'any', '-U', '-w', pcaps[i]!, 'udp']));
    await waitFor(() => dumps.every((d) => /listening on/.test(lab.output(d)) || d.exitCode !== null), 10_000, 'tcpdump listening');
    const pattern = 'c0ffee5ec2e7c0ffee5ec2e7c0ffee5e';
    t.equal((await lab.exec('alice', pingArgv(desktop.ip4, { count: 5, intervalS: 0.2, waitS: 2 }).concat(['-p', pattern, '-s', '400']), { timeoutMs: 20_000 })).code, 0, 'relayed pings with a marker payload');
    await new Promise((r) => setTimeout(r, 1000));
    for (const d of dumps) d.kill('SIGINT');
    await waitFor(() => dumps.every((d) => d.exitCode !== null), 5000, 'tcpdump stops').catch(() => {});
    const bytes = pcaps.map((f) => readFileSync(f));
    const total = bytes.reduce((n, b) => n + b.length, 0);
    t.ok(total > 400 * 5, `the forwarders saw the traffic (${watchers.map((h, i) => `${h} ${bytes[i]!.length}`).join(', ')} bytes captured)`);
    t.ok(bytes.every((b) => b.indexOf(Buffer.from(pattern, 'hex')) === -1), 'the marker never appears in the clear');
  });

  await t.test('local IPs survive a restart', async (t) => {
    t.equal((await sv('alice', 'stop')).code, 0, 'stopped');
    t.equal((await sv('alice', 'start')).code, 0, 'started again');
    const back = await waitFor(async () => JSON.stringify(await onlineAt('alice')) === JSON.stringify(want.alice), 60_000, 'friends back', 1000).then(() => true, () => false);
    t.ok(back, 'Bob\'s devices online again');
    const again = (await status('alice'))!;
    for (const p of aliceView.peers) t.equal(again.peers.find((q) => q.name === p.name)?.ip4, p.ip4, `${p.name} keeps ${p.ip4}`);
  });

  await t.test('after friend remove, traffic stops within 5 s', async (t) => {
    const phone = aliceView.peers.find((p) => p.device === 'phone')!;
    t.equal((await lab.exec('alice', pingArgv(phone.ip4, { count: 2, waitS: 2 }), { timeoutMs: 15_000 })).code, 0, 'reachable before');
    t.equal((await sv('alice', 'friend', 'remove', 'bob')).code, 0, 'removed');
    const t0 = Date.now();
    const stopped = await waitFor(async () => (await lab.exec('alice', pingArgv(phone.ip4, { count: 1, waitS: 1 }), { timeoutMs: 5000 })).code !== 0, 10_000, 'pings fail', 200)
      .then(() => true, () => false);
    const ms = Date.now() - t0;
    t.ok(stopped && ms <= 5000, `pings stopped ${ms} ms after the removal`);
    t.not((await lab.exec('bob2', pingArgv('laptop.alice.svpn', { count: 1, waitS: 1 }), { timeoutMs: 5000 })).code, 0, 'and Bob\'s phone no longer reaches Alice');
  });

  await t.test('GroupVPN runs beside SocialVPN on one host', async (t) => {
    const g = hostConfig(lab.dir, 'carol-group', { bootIp, remoteTAs: [], vip: '10.99.0.3', overlayPort: 17001, xmlRpcPort: 10001, getStatePort: 5800 });
    const r = await groupvpn(lab, 'carol', ['start', '-c', g]);
    t.equal(r.code, 0, `groupvpn beside socialvpn: ${r.stdout}${r.stderr}`);
    const links = (await lab.exec('carol', ['ip', '-br', 'link'])).stdout;
    t.match(links, /svpn0/);
    t.match(links, /tapipop/);
    t.equal((await sv('carol', 'status')).code, 0, 'socialvpn status still answers');
    t.equal((await groupvpn(lab, 'carol', ['stop', '-c', g])).code, 0, 'groupvpn stopped');
  });

  const stops = await Promise.all(hosts.map((h) => sv(h, 'stop')));
  for (const [i, r] of stops.entries()) t.equal(r.code, 0, `${hosts[i]} stopped`);
});
