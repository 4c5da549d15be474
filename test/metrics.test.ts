// GET /metrics on the control port: the exposition parses with a Prometheus text-format
// parser, the counters move with traffic, each overlay has its own registry, and the
// endpoint is reachable on loopback only and not at all with XmlRpcManager disabled; the
// secure, relay and VPN figures map the layers' counters to their labels.
import { execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { networkInterfaces } from 'node:os';
import t, { type Test } from 'tap';
import { COSTLY_DEFAULTS, OverlayMetrics } from '../src/control/metrics.js';
import { ControlServer } from '../src/control/server.js';
import { ConnectionTable } from '../src/connection/table.js';
import type { Connection } from '../src/connection/connection.js';
import { Address } from '../src/address/address.js';
import { seededRandom } from '../src/util/random.js';
import { newSecureStats } from '../src/edge/secure-types.js';
import type { Node } from '../src/node/node.js';
import { newStats } from '../src/transport/edge.js';
import { newFramePathStats } from '../src/vpn/frame-path.js';
import { addVpnMetrics } from '../src/vpn/metrics.js';
import { startDhtRing } from './helpers/dht.js';
import { freeTcpPort, freeUdpPort } from './helpers/ports.js';
import { RUN, tempDir, writeConfig } from './helpers/procs.js';
import { consistency, stopAll, waitFor } from './helpers/ring.js';

interface Sample { value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string; sum?: string }
interface Family { name: string; help: string; type: string; metrics: Sample[] }
// The text-format parser throws on any malformed line. It flattens a histogram's label sets
// into one, so histogram series are read from the validated text by seriesOf() below.
const parse = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];
type Scrape = Map<string, Family> & { text: string };

/** One raw series line's value, e.g. seriesOf(m, 'x_count', 'op="put",result="ok"'). */
function seriesOf(m: Scrape, name: string, labels: string): number | undefined {
  const line = m.text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** GET http://host:port/path: status and body, or the connection error's code. */
function get(host: string, port: number, path = '/metrics', headers: Record<string, string> = {}): Promise<{ status?: number; type?: string; body?: string; error?: string }> {
  return new Promise((resolve) => {
    const req = request({ host, port, path, method: 'GET', timeout: 5000, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, type: res.headers['content-type'], body }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    req.end();
  });
}

async function scrape(t: Test, port: number): Promise<Scrape> {
  const r = await get('127.0.0.1', port);
  t.equal(r.status, 200, r.error ?? 'GET /metrics answers 200');
  t.match(r.type, /^text\/plain; version=0\.0\.4/, 'the text exposition format');
  return Object.assign(new Map(parse(r.body ?? '').map((f) => [f.name, f])), { text: r.body ?? '' });
}

/** The value of one series (labels must match exactly the ones given), or undefined. */
function value(m: Scrape, name: string, labels: Record<string, string> = {}): number | undefined {
  const s = m.get(name)?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  return s?.value === undefined ? undefined : Number(s.value);
}
const total = (m: Scrape, name: string) => (m.get(name)?.metrics ?? []).reduce((a, s) => a + Number(s.value ?? 0), 0);

t.test('/metrics parses and its counters move with traffic (4 nodes, UDP, DHT)', async (t) => {
  const { nodes, dhts } = await startDhtRing(4, 'udp');
  t.teardown(async () => { await stopAll(nodes); await Promise.all(dhts.map((d) => d.close())); });
  t.ok(await waitFor(() => consistency(nodes) === 1, 30_000), 'ring consistent');
  const port = await freeTcpPort();
  const server = new ControlServer(nodes, port);
  server.metrics = new OverlayMetrics(nodes, dhts);
  await server.start();
  t.teardown(() => server.stop());

  const before = await scrape(t, port);
  for (const name of ['brunet_nodes', 'brunet_connections', 'brunet_transport_packets_total', 'brunet_transport_bytes_total', 'brunet_messages_total',
    'brunet_bytes_total', 'brunet_rpc_calls_total', 'brunet_rpc_failures_total', 'brunet_dht_operations_total', 'brunet_dht_operation_seconds',
    'brunet_secure_failures_total', 'brunet_relay_forwarded_bytes_total', 'brunet_link_events_total', 'process_cpu_seconds_total', 'process_resident_memory_bytes']) {
    t.ok(before.has(name), `${name} is exported`);
  }
  for (const name of COSTLY_DEFAULTS) t.notOk(before.has(name), `${name} (walks every fd, handle or timer per scrape) is not exported`);
  t.ok(before.has('process_cpu_user_seconds_total') && before.has('nodejs_heap_size_used_bytes'), 'the other defaults stay');
  t.equal(before.get('brunet_transport_packets_total')?.type, 'COUNTER');
  t.equal(before.get('brunet_dht_operation_seconds')?.type, 'HISTOGRAM');
  t.equal(value(before, 'brunet_nodes', { state: 'connected' }), 4, 'four connected nodes, summed into one series');
  const conns = before.get('brunet_connections')!.metrics;
  t.equal(conns.reduce((a, s) => a + Number(s.value), 0), nodes.reduce((a, n) => a + n.table.size, 0), 'connections: the tables\' total');
  t.ok(conns.some((s) => s.labels?.type === 'structured.near' && s.labels?.edge === 'udp'), 'labelled by connection type and edge kind');

  const enc = (s: string) => new TextEncoder().encode(s);
  for (let i = 0; i < 5; i++) await dhts[i % 4]!.dht.put(enc(`metrics-${i}`), enc(`v${i}`), 600);
  for (let i = 0; i < 5; i++) t.equal((await dhts[(i + 1) % 4]!.dht.get(enc(`metrics-${i}`))).length, 1, `value ${i} read back`);

  const after = await scrape(t, port);
  t.equal(value(after, 'brunet_dht_operations_total', { op: 'put' })! - value(before, 'brunet_dht_operations_total', { op: 'put' })!, 5, '5 puts counted');
  t.equal(value(after, 'brunet_dht_operations_total', { op: 'get' })! - value(before, 'brunet_dht_operations_total', { op: 'get' })!, 5, '5 gets counted');
  const h = 'brunet_dht_operation_seconds', ok = (op: string) => `op="${op}",result="ok"`;
  t.equal(seriesOf(after, `${h}_count`, ok('put')), 5, 'the latency histogram observed the 5 puts');
  t.equal(seriesOf(after, `${h}_count`, ok('get')), 5, 'and the 5 gets');
  t.equal(seriesOf(after, `${h}_bucket`, `le="+Inf",${ok('put')}`), 5, '+Inf bucket = count');
  t.ok(seriesOf(after, `${h}_sum`, ok('put'))! > 0, 'latencies add up to more than 0 s');
  for (const [name, labels] of [['brunet_transport_packets_total', { edge: 'udp', direction: 'out' }], ['brunet_transport_bytes_total', { edge: 'udp', direction: 'in' }],
    ['brunet_messages_total', { layer: 'rpc', direction: 'out' }], ['brunet_messages_total', { layer: 'routing', direction: 'in' }], ['brunet_rpc_calls_total', {}]] as const) {
    t.ok(value(after, name, labels)! > value(before, name, labels)!, `${name}${JSON.stringify(labels)} grew with the traffic`);
  }
  t.ok(total(after, 'brunet_rpc_served_total') >= 10, 'the replicas served the DHT requests');

  // A second overlay in the same process has its own registry: no clash, its own figures.
  const other = new OverlayMetrics(nodes.slice(0, 1));
  const text = await other.render();
  const mine = Object.assign(new Map(parse(text).map((f) => [f.name, f])), { text });
  t.equal(value(mine, 'brunet_nodes', { state: 'connected' }), 1, 'a second registry in the same process counts only its nodes');
  const again = await get('127.0.0.1', port, '/metrics');
  t.equal(again.status, 200, 'the first one still serves');

  const post = await get('127.0.0.1', port, '/xm.rem');
  t.equal(post.status, 405, 'GET elsewhere is still refused (the XML-RPC endpoints are POST)');
});

const JSON_KEYS = ['time', 'level', 'node', 'component', 'message'];

t.test('run_bootstrap_node: /metrics on loopback only, JSON logs one object per line', async (t) => {
  const dir = tempDir(t);
  const [udp, control] = [await freeUdpPort(), await freeTcpPort()];
  const cfg = writeConfig(dir, 'n.config', { ns: 'metricsns', udp, remote: udp, control, security: '<Dht><DataDirectory>memory</DataDirectory></Dht>' });
  const child = spawn(process.execPath, [RUN, cfg, '--nodes', '3', '--bind', '127.0.0.1', '--log-level', 'debug', '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  let out = '', err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.ok(await waitFor(() => /control API http/.test(out) || child.exitCode !== null, 30_000), out + err);

  const m = await scrape(t, control);
  t.equal(total(m, 'brunet_nodes'), 3, 'the three nodes of the process, summed');
  t.ok(await waitFor(() => /"node":"[A-Z2-7]{8}"/.test(err), 15_000), 'node lines arrive');
  // A page elsewhere that rebinds its name to 127.0.0.1 names itself in Host: refused.
  t.equal((await get('127.0.0.1', control, '/metrics', { host: `attacker.example:${control}` })).status, 403, 'a foreign Host gets 403');
  t.equal((await get('127.0.0.1', control, '/metrics', { host: `localhost:${control}` })).status, 200, 'localhost is served');

  // Bound to 127.0.0.1 only: every other local address refuses the connection.
  const others = Object.entries(networkInterfaces()).flatMap(([dev, as]) => (as ?? []).filter((a) => !a.internal)
    .map((a) => (a.family === 'IPv6' && a.scopeid ? `${a.address}%${dev}` : a.address)));
  if (others.length === 0) t.ok(!process.env.CI, 'this machine has a non-loopback address to try (needed in CI)');
  for (const a of others) {
    const r = await get(a, control);
    t.ok(r.error === 'ECONNREFUSED' || r.error === 'EADDRNOTAVAIL' || r.error === 'ENETUNREACH', `not reachable on ${a}: ${r.error ?? r.status}`);
  }

  child.kill('SIGINT');
  t.equal(await exited, 0);
  const lines = err.trimEnd().split('\n');
  t.ok(lines.length >= 3, `${lines.length} log lines`);
  let good = 0, withNode = 0;
  for (const l of lines) {
    let o: Record<string, unknown>;
    try { o = JSON.parse(l); } catch { t.fail(`not JSON: ${l}`); continue; }
    if (JSON_KEYS.every((k) => k in o) && !Number.isNaN(Date.parse(String(o.time))) && ['debug', 'info', 'warn', 'error'].includes(String(o.level))) good++;
    else t.fail(`missing keys: ${l}`);
    if (typeof o.node === 'string') withNode++;
  }
  t.equal(good, lines.length, 'every stderr line is one JSON object with time, level, node, component, message');
  t.ok(withNode > 0, 'node lines name their node');
  t.match(out, /^started 3 nodes/, 'stdout keeps its plain lines');
});

t.test('no /metrics when XmlRpcManager/Enabled is false', async (t) => {
  const dir = tempDir(t);
  const [udp, control] = [await freeUdpPort(), await freeTcpPort()];
  // Port given, but disabled.
  const cfg = writeConfig(dir, 'off.config', { ns: 'metricsoff', udp, remote: udp, security: '<Dht><DataDirectory>memory</DataDirectory></Dht>' });
  writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('<Port>10000</Port>', `<Port>${control}</Port>`));
  const child = spawn(process.execPath, [RUN, cfg, '--bind', '127.0.0.1', '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  t.ok(await waitFor(() => /control API disabled/.test(out) || child.exitCode !== null, 30_000), out);
  const r = await get('127.0.0.1', control);
  t.equal(r.error, 'ECONNREFUSED', 'nothing listens on the configured port');
  child.kill('SIGINT');
  t.equal(await exited, 0);
});

t.test('--log-format: a bad value is bad input (exit 2, one clear line)', async (t) => {
  const runIt = (file: string, args: string[]) => new Promise<{ code: number | null; stderr: string }>((resolve) => {
    execFile(process.execPath, [file, ...args], { timeout: 30_000 }, (e, _o, stderr) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stderr }));
  });
  const dir = tempDir(t);
  const cfg = writeConfig(dir, 'n.config', { udp: 0, remote: 1 });
  const a = await runIt(RUN, [cfg, '--log-format', 'xml']);
  t.equal(a.code, 2);
  t.equal(a.stderr, 'run_bootstrap_node: --log-format must be one of text, json\n');
  // A failure after the logger exists is a JSON line too (here: the control port is taken).
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  t.teardown(() => { busy.close(); });
  const taken = writeConfig(dir, 'busy.config', { ns: 'metricsbusy', udp: await freeUdpPort(), remote: 1, control: (busy.address() as { port: number }).port,
    security: '<Dht><DataDirectory>memory</DataDirectory></Dht>' });
  const c = await runIt(RUN, [taken, '--bind', '127.0.0.1', '--log-format', 'json']);
  t.equal(c.code, 1, c.stderr);
  const objs = c.stderr.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.match(objs.at(-1), { level: 'error', message: /address already in use/ }, 'the failure is the last JSON line');
  for (const prog of ['groupvpn', 'socialvpn']) {
    const b = await runIt(RUN.replace('run-bootstrap-node.js', `${prog}.js`), ['status', '-c', cfg, '--log-format', 'yaml']);
    t.equal(b.code, 2, prog);
    t.equal(b.stderr, `${prog}: --log-format must be one of text, json\n`);
  }
});

t.test('secure failures by reason, relay counters and VPN frames come from the stats objects', async (t) => {
  const secure = { ...newSecureStats(), handshakesOk: 3, handshakesFailed: { timeout: 2, rejected: 1 }, decryptFailures: 4, replays: 5, packetsIn: 7, packetsOut: 8 };
  const tunnel = { kind: 'tunnel', stats: { ...newStats(), bytesIn: 100, bytesOut: 200, relayed: 6, relayedBytes: 600, capDrops: 1, noRoute: 2, unknownEdge: 3, refused: 4 } };
  // A node as the metrics read it: a secure UDP listener and a relay listener.
  const node = {
    status: 'connected', table: { all: () => [][Symbol.iterator](), onChange: () => {} },
    listeners: [{ kind: 'udp', stats: secure, inner: { kind: 'udp', stats: { ...newStats(), packetsIn: 9 } } }, tunnel],
    link: { stats: {} }, router: { stats: {} }, rpc: { stats: {} },
  } as unknown as Node;
  const m = new OverlayMetrics([node, node]);
  const vpn = { ...newFramePathStats(), rxFrames: 10, rxBytes: 1000, txFrames: 20, txBytes: 2000, txOffload: 2, dropNoLink: 3, dropSpoofed: 4 };
  addVpnMetrics(m.registry, () => vpn, () => ({ framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0, writeDrops: 5 }));
  const text = await m.render();
  const s: Scrape = Object.assign(new Map(parse(text).map((f) => [f.name, f])), { text });
  t.equal(value(s, 'brunet_secure_handshakes_total'), 6, 'two nodes summed');
  t.equal(value(s, 'brunet_secure_failures_total', { reason: 'handshake_timeout' }), 4);
  t.equal(value(s, 'brunet_secure_failures_total', { reason: 'handshake_rejected' }), 2);
  t.equal(value(s, 'brunet_secure_failures_total', { reason: 'decrypt' }), 8);
  t.equal(value(s, 'brunet_secure_failures_total', { reason: 'replay' }), 10);
  t.equal(value(s, 'brunet_messages_total', { layer: 'secure', direction: 'in' }), 14);
  t.equal(value(s, 'brunet_transport_packets_total', { edge: 'udp', direction: 'in' }), 18, 'the transport under the secure wrapper');
  t.equal(value(s, 'brunet_relay_forwarded_bytes_total'), 1200);
  t.equal(value(s, 'brunet_bytes_total', { layer: 'relay', direction: 'out' }), 400);
  t.same([1, 2, 3, 4].map((_, i) => value(s, 'brunet_relay_drops_total', { reason: ['rate_cap', 'no_route', 'unknown_edge', 'refused'][i]! })), [2, 4, 6, 8]);
  t.equal(value(s, 'brunet_vpn_frames_total', { direction: 'in' }), 10);
  t.equal(value(s, 'brunet_vpn_bytes_total', { direction: 'out' }), 2000);
  t.equal(value(s, 'brunet_vpn_offload_total', { direction: 'out' }), 2);
  t.equal(value(s, 'brunet_vpn_drops_total', { reason: 'no_link' }), 3);
  t.equal(value(s, 'brunet_vpn_drops_total', { reason: 'spoofed' }), 4, 'a mode\'s own drop counters too');
  t.equal(value(s, 'brunet_vpn_drops_total', { reason: 'tap_write' }), 5);
});

t.test('brunet_connections follows each table as connections come, change type and go', async (t) => {
  const rnd = seededRandom(18);
  const table = new ConnectionTable(Address.random(rnd), () => 0);
  const node = { status: 'connected', table, listeners: [], link: { stats: {} }, router: { stats: {} }, rpc: { stats: {} } } as unknown as Node;
  const m = new OverlayMetrics([node]);
  const con = (type: string, kind: string) => {
    const c = { address: Address.random(rnd), edge: { kind }, type, get structured() { return this.type.startsWith('structured'); } };
    return c as unknown as Connection;
  };
  const read = async () => {
    const text = await m.render();
    const s: Scrape = Object.assign(new Map(parse(text).map((f) => [f.name, f])), { text });
    return (s.get('brunet_connections')?.metrics ?? []).map((x) => `${x.labels?.type} ${x.labels?.edge} ${x.value}`).sort();
  };
  t.same(await read(), [], 'no connections');
  const a = con('structured.near', 'udp'), b = con('leaf', 'udp'), c = con('structured.shortcut', 'tunnel');
  table.add(a); table.add(b); table.add(c);
  t.same(await read(), ['leaf udp 1', 'structured.near udp 1', 'structured.shortcut tunnel 1']);
  t.same(await read(), ['leaf udp 1', 'structured.near udp 1', 'structured.shortcut tunnel 1'], 'the same without changes');
  table.setType(b, 'structured.near');
  t.same(await read(), ['structured.near udp 2', 'structured.shortcut tunnel 1'], 'a type change moves the connection');
  table.remove(a);
  t.same(await read(), ['structured.near udp 1', 'structured.shortcut tunnel 1'], 'a removal');
});
