// RemoteTAs that cannot be reached as written (a bad IP, a host that does not resolve) are
// named in a warning at the default log level, and never looked up when they are not names.
import t from 'tap';
import { spawn } from 'node:child_process';
import { remoteTaProblem, warnUnusableRemoteTas } from '../src/node/remote-tas.js';
import { resolveTa } from '../src/transport/ip.js';
import { TransportAddress } from '../src/transport/ta.js';
import { createLogger } from '../src/util/log.js';
import { RUN, tempDir, writeConfig } from './helpers/procs.js';

const ta = (s: string) => TransportAddress.parse(s);

/** A lookup that knows one name and counts its calls; never leaves the machine. */
function fakeLookup(known: Record<string, string>) {
  const asked: string[] = [];
  const fn = async (host: string) => {
    asked.push(host);
    if (host in known) return { address: known[host], family: 4 };
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  };
  return { fn, asked };
}

t.test('problems: bad dotted quad without a lookup, unresolvable name, slow lookup', async (t) => {
  const l = fakeLookup({ 'boot.example': '127.0.0.1' });
  t.equal(await remoteTaProblem(ta('brunet.udp://300.1.1.1:4000'), l.fn), '300.1.1.1 is not a valid IPv4 address');
  t.same(l.asked, [], 'a bad dotted quad is not looked up');
  t.equal(await remoteTaProblem(ta('brunet.tcp://no-such-host.invalid:4000'), l.fn), 'host no-such-host.invalid does not resolve (ENOTFOUND)');
  t.equal(await remoteTaProblem(ta('brunet.udp://boot.example:4000'), l.fn), undefined, 'a name that resolves');
  t.equal(await remoteTaProblem(ta('brunet.udp://127.0.0.1:4000'), l.fn), undefined, 'an IPv4 address');
  t.equal(await remoteTaProblem(ta('brunet.udp://[::1]:4000'), l.fn), undefined, 'an IPv6 address');
  t.same(l.asked, ['no-such-host.invalid', 'boot.example'], 'IPs are not looked up');
  const t0 = Date.now();
  const keepAlive = setTimeout(() => {}, 5000); // the bound's own timer is unref'd
  t.equal(await remoteTaProblem(ta('brunet.udp://slow.example:1'), () => new Promise(() => {}), 200), 'host slow.example does not resolve (no answer within 0.2 s)');
  clearTimeout(keepAlive);
  t.ok(Date.now() - t0 < 2000, 'a lookup that never answers is bounded');
});

t.test('resolveTa refuses a bad dotted quad instead of asking DNS', async (t) => {
  await t.rejects(resolveTa(ta('brunet.udp://300.1.1.1:4000')), /300\.1\.1\.1 is not a valid IPv4 address/);
  t.equal((await resolveTa(ta('brunet.udp://127.0.0.1:4000'))).host, '127.0.0.1');
});

t.test('warnings at the default level name each TA', async (t) => {
  const lines: string[] = [];
  const log = createLogger('info', '', (l) => lines.push(l));
  const l = fakeLookup({});
  const tas = [ta('brunet.udp://300.1.1.1:4000'), ta('brunet.tcp://gone.example:4001'), ta('brunet.udp://127.0.0.1:4002')];
  t.equal(await warnUnusableRemoteTas(tas, log, l.fn), 2);
  t.equal(lines.length, 2);
  t.match(lines[0], / WARN RemoteTAs: brunet\.udp:\/\/300\.1\.1\.1:4000: 300\.1\.1\.1 is not a valid IPv4 address; this bootstrap cannot be reached$/);
  t.match(lines[1], / WARN RemoteTAs: brunet\.tcp:\/\/gone\.example:4001: host gone\.example does not resolve \(ENOTFOUND\)/);
  lines.length = 0;
  t.equal(await warnUnusableRemoteTas(tas.slice(0, 1), log, l.fn), 1);
  t.match(lines[1], /none of the RemoteTAs can be reached/, 'and says when none can');
  lines.length = 0;
  t.equal(await warnUnusableRemoteTas([], log, l.fn), 0);
  t.same(lines, [], 'no RemoteTAs: nothing to warn about here');
});

// No port is picked here for the child: a port found free and handed over can be taken by any
// process on the machine before the child binds it (CI saw the child exit after its warnings
// with no "started"). The UDP listener takes a random port and the control API is off.
// The wait is long because starting takes about 2 s of CPU (module loading, the scrypt of the
// namespace key): at a load of 20 to 40 on two cores it took 10 to 20 s, and over 15 s still
// before the second log line. A node that starts ends the wait at once.
t.test('run_bootstrap_node warns about RemoteTAs 300.1.1.1 at the default log level', async (t) => {
  const cfg = writeConfig(tempDir(t), 'n.config', { ns: 'tawarn', udp: 0, remote: 0, remoteTA: 'brunet.udp://300.1.1.1:4000', security: '<Dht><DataDirectory>memory</DataDirectory></Dht>' });
  const child = spawn(process.execPath, [RUN, cfg, '--bind', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  let err = '', out = '';
  child.stderr!.on('data', (d) => { err += d; });
  child.stdout!.on('data', (d) => { out += d; });
  const t0 = Date.now(), end = t0 + 60_000;
  const running = () => child.exitCode === null && child.signalCode === null;
  while (Date.now() < end && !(/control API disabled/.test(out) && /none of the RemoteTAs/.test(err)) && running()) await new Promise((r) => setTimeout(r, 50));
  // On failure, say why: the child's stderr and how it ended.
  const why = { stderr: err, exitCode: child.exitCode, signal: child.signalCode, waitedMs: Date.now() - t0 };
  t.match(out, /started 1 node in namespace tawarn\n[^]*control API disabled/, 'the node starts', why);
  t.match(err, /WARN RemoteTAs: brunet\.udp:\/\/300\.1\.1\.1:4000: 300\.1\.1\.1 is not a valid IPv4 address; this bootstrap cannot be reached/);
  t.match(err, /none of the RemoteTAs can be reached/);
});
