import net from 'node:net';
import t, { type Test } from 'tap';
import type { Edge } from '../src/transport/edge.js';
import { TransportAddress } from '../src/transport/ta.js';
import { TcpEdgeListener, type TcpListenerOptions } from '../src/transport/tcp.js';
import { realClock, type Clock } from '../src/util/clock.js';
import { cryptoRandom } from '../src/util/random.js';

const mk = (o: Partial<TcpListenerOptions> = {}) =>
  new TcpEdgeListener({ port: 0, host: '127.0.0.1', clock: realClock, random: cryptoRandom, ...o });

async function started(t: Test, n: number, o: Partial<TcpListenerOptions> = {}): Promise<TcpEdgeListener[]> {
  const ls = Array.from({ length: n }, () => mk(o));
  await Promise.all(ls.map((l) => l.start()));
  t.teardown(() => Promise.all(ls.map((l) => l.stop())));
  return ls;
}

async function waitFor(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const ta0 = (l: TcpEdgeListener) => l.localTAs()[0]!;
const bytes = (s: string) => new Uint8Array(Buffer.from(s));
const text = (p: Uint8Array) => Buffer.from(p).toString();

function rawConnect(t: Test, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.on('error', reject);
    t.teardown(() => { s.destroy(); });
  });
}

/** Accepts the next inbound edge and records its packets. */
function collect(l: TcpEdgeListener): { edges: Edge[]; got: Uint8Array[] } {
  const r = { edges: [] as Edge[], got: [] as Uint8Array[] };
  l.onEdge = (e) => { r.edges.push(e); e.onPacket = (p) => r.got.push(p); };
  return r;
}

t.test('edges in both directions', async (t) => {
  const [a, b] = await started(t, 2);
  t.match(ta0(a!).toString(), /^brunet\.tcp:\/\/127\.0\.0\.1:\d+$/);
  const rb = collect(b!);
  const ea = await a!.createEdge(ta0(b!));
  t.notOk(ea.inbound);
  const gotA: string[] = [];
  ea.onPacket = (p) => gotA.push(text(p));
  ea.send(bytes('hello'));
  await waitFor('frame', () => rb.got.length === 1);
  const eb = rb.edges[0]!;
  t.ok(eb.inbound);
  t.equal(eb.remoteTA.host, '127.0.0.1');
  t.not(eb.remoteTA.port, ta0(a!).port, 'inbound remoteTA is the connecting socket');
  eb.send(bytes('back'));
  await waitFor('reply', () => gotA.length === 1);
  t.same(gotA, ['back']);
  t.equal(a!.edgeCount, 1);
  t.equal(b!.edgeCount, 1);
  await t.rejects(a!.createEdge(TransportAddress.parse('brunet.udp://127.0.0.1:1')), /cannot reach/);
});

t.test('large and many small frames keep their boundaries', async (t) => {
  const [a, b] = await started(t, 2);
  const rb = collect(b!);
  const e = await a!.createEdge(ta0(b!));
  const big = new Uint8Array(200_000).map((_, i) => (i * 7) & 0xff);
  e.send(big);
  const small: string[] = [];
  for (let i = 0; i < 2000; i++) { small.push(`m${i}`.repeat(1 + (i % 5))); e.send(bytes(small[i]!)); }
  e.send(big);
  await waitFor('all frames', () => rb.got.length === 2002);
  t.same(Buffer.from(rb.got[0]!), Buffer.from(big), 'big frame intact');
  t.same(Buffer.from(rb.got[2001]!), Buffer.from(big));
  t.same(rb.got.slice(1, 2001).map(text), small, 'small frames in order');
  t.equal(b!.stats.packetsIn, 2002);
  t.equal(b!.stats.malformed, 0);
});

t.test('frames split across arbitrary chunk boundaries', async (t) => {
  const [b] = await started(t, 1);
  const rb = collect(b!);
  const raw = await rawConnect(t, ta0(b!).port);
  const wire = Buffer.concat([Buffer.from([0, 0, 0, 3]), Buffer.from('abc'), Buffer.from([0, 0, 0, 2]), Buffer.from('de')]);
  for (const byte of wire) {
    raw.write(Buffer.from([byte]));
    await new Promise((r) => setTimeout(r, 1));
  }
  await waitFor('frames', () => rb.got.length === 2);
  t.same(rb.got.map(text), ['abc', 'de']);
});

t.test('oversize and zero-length frames close the edge', async (t) => {
  const [b] = await started(t, 1, { maxFrame: 1000 });
  const rb = collect(b!);
  const reasons: string[] = [];
  for (const header of [[0, 0, 0x13, 0x88], [0, 0, 0, 0]]) {
    const raw = await rawConnect(t, ta0(b!).port);
    const closed = new Promise<void>((r) => raw.on('close', () => r()));
    raw.write(Buffer.from([0, 0, 0, 1, 0x41, ...header, 1, 2, 3]));
    await waitFor('edge', () => rb.edges.length === reasons.length + 1);
    const e = rb.edges[reasons.length]!;
    e.onClose = (_e, r) => reasons.push(r);
    await waitFor('protocol close', () => e.closed);
    await closed; // the peer's socket is closed too
  }
  t.equal(rb.got.length, 2, 'frames before the bad one were delivered');
  t.match(reasons, [/protocol error: frame length 5000/, /protocol error: frame length 0/]);
  t.equal(b!.stats.malformed, 2);
  t.equal(b!.edgeCount, 0);
});

t.test('oversize and empty sends are dropped and counted', async (t) => {
  const [a, b] = await started(t, 2, { maxFrame: 1000 });
  const rb = collect(b!);
  const e = await a!.createEdge(ta0(b!));
  e.send(new Uint8Array(1001));
  e.send(new Uint8Array(0));
  e.send(new Uint8Array(1000));
  await waitFor('frame', () => rb.got.length === 1);
  t.equal(a!.stats.sendErrors, 2);
  t.notOk(e.closed);
});

t.test('close propagates both ways; stop closes peers', async (t) => {
  const [a, b] = await started(t, 2);
  const rb = collect(b!);
  const e1 = await a!.createEdge(ta0(b!));
  e1.send(bytes('last words'));
  e1.close();
  e1.close();
  await waitFor('inbound', () => rb.edges.length === 1);
  const r1: string[] = [];
  rb.edges[0]!.onClose = (_e, r) => r1.push(r);
  await waitFor('peer close', () => rb.edges[0]!.closed);
  t.same(rb.got.map(text), ['last words'], 'data sent before close is flushed');
  t.same(r1, ['closed by peer']);

  const e2 = await a!.createEdge(ta0(b!));
  let r2 = '';
  e2.onClose = (_e, r) => { r2 = r; };
  await waitFor('second inbound', () => rb.edges.length === 2);
  rb.edges[1]!.close();
  await waitFor('outbound close', () => e2.closed);
  t.equal(r2, 'closed by peer');

  const e3 = await a!.createEdge(ta0(b!));
  await waitFor('third inbound', () => b!.edgeCount === 1);
  await b!.stop();
  await waitFor('stop closes remote', () => e3.closed);
  t.equal(a!.edgeCount, 0);
});

t.test('connect failures reject clearly', async (t) => {
  const [a] = await started(t, 1);
  const gone = mk();
  await gone.start();
  const ta = ta0(gone);
  await gone.stop();
  await t.rejects(a!.createEdge(ta), { message: `tcp connect to ${ta}: connection refused` });

  // A clock whose timers fire at once makes the timeout path deterministic.
  const instant: Clock = { ...realClock, setTimeout: (fn) => { queueMicrotask(fn); return { cancel() {} }; } };
  const [b] = await started(t, 1);
  const hasty = mk({ clock: instant, connectTimeoutMs: 1 });
  await hasty.start();
  t.teardown(() => hasty.stop());
  await t.rejects(hasty.createEdge(ta0(b!)), { message: `tcp connect to ${ta0(b!)}: timed out after 1 ms` });
  await t.rejects(mk().createEdge(ta0(b!)), /not started/);
});

t.test('handler exceptions never escape', async (t) => {
  const [a, b] = await started(t, 2);
  let n = 0;
  b!.onEdge = (e) => { e.onPacket = () => { n++; throw new Error('boom'); }; };
  const e = await a!.createEdge(ta0(b!));
  e.send(bytes('1'));
  e.send(bytes('2'));
  await waitFor('both', () => n === 2);
  t.equal(b!.stats.handlerErrors, 2);
});

t.test('port in use rejects clearly; stop releases the port', async (t) => {
  const [a] = await started(t, 1);
  const port = ta0(a!).port;
  await t.rejects(mk({ port }).start(), { message: `tcp port ${port}: address already in use` });
  await a!.stop();
  t.same(a!.localTAs(), []);
  const again = mk({ port });
  await again.start();
  t.equal(ta0(again).port, port);
  await again.stop();
});

t.test('a connection reset by the peer closes the edge as "reset by peer"', async (t) => {
  // The link layer re-links at once on this reason (the peer restarted, or our public address
  // changed under the connection), as it does for the UDP transport's reset.
  const srv = net.createServer((s) => { s.on('data', () => s.resetAndDestroy()); s.on('error', () => {}); });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => { srv.close(); });
  const [a] = await started(t, 1);
  const port = (srv.address() as net.AddressInfo).port;
  const e = await a!.createEdge(new TransportAddress('tcp', '127.0.0.1', port));
  let reason = '';
  e.onClose = (_e, r) => { reason = r; };
  e.send(bytes('hello'));
  await waitFor('the reset', () => e.closed);
  t.equal(reason, 'reset by peer');
});
