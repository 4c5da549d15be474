// The DHT on rings in virtual time (VirtualLab): placement and majority, Put/Create/Get
// semantics, TTL expiry, paging, limits, repair after node loss; and, in real time (disk
// I/O), persistence across a restart.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Node } from '../src/node/node.js';
import { DhtError } from '../src/dht/limits.js';
import { majority, replicaPoints, ringKey } from '../src/dht/placement.js';
import { MemoryNetwork } from '../src/transport/memory.js';
import { consistency, FAST, stopAll } from './helpers/ring.js';
import { attachDht, startDhtRing } from './helpers/dht.js';
import { VirtualLab } from './helpers/virtual.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

t.test('placement', async (t) => {
  const pts = replicaPoints(enc('greeting'), 8);
  t.equal(pts.length, 8);
  t.ok(pts.every((p) => p.isClass0), 'class 0 points');
  t.ok(pts[0]!.equals(ringKey(enc('greeting'))));
  t.equal(majority(8), 5);
});

t.test('32-node ring: 1,000 keys, Create, multi-value Put, TTL, paging, limits', async (t) => {
  const lab = new VirtualLab({ seed: 31 });
  const { nodes, dhts } = await startDhtRing(32, lab);
  t.teardown(async () => { await stopAll(nodes); await Promise.all(dhts.map((d) => d.close())); await lab.stop(); });
  t.ok(await lab.waitFor(() => consistency(nodes) === 1, 30_000), 'ring formed');

  const keys = Array.from({ length: 1000 }, (_, i) => `key-${i}`);
  let stored = 0;
  for (let i = 0; i < keys.length; i += 50) {
    await Promise.all(keys.slice(i, i + 50).map((k, j) => dhts[(i + j) % 32]!.dht.put(enc(k), enc(`value of ${k}`), 3600).then(() => { stored++; }, () => {})));
  }
  t.equal(stored, 1000, 'all 1,000 puts reached a majority');
  let found = 0;
  for (let i = 0; i < keys.length; i += 50) {
    await Promise.all(keys.slice(i, i + 50).map((k, j) => dhts[(i + j + 7) % 32]!.dht.get(enc(k)).then((vs) => {
      if (vs.length === 1 && dec(vs[0]!.value) === `value of ${k}`) found++;
    }, () => {})));
  }
  t.equal(found, 1000, 'all 1,000 keys read back from other nodes');

  const d = dhts[3]!.dht, e = dhts[20]!.dht;
  await d.create(enc('claim'), enc('mine'), 600);
  await e.create(enc('claim'), enc('mine'), 900);
  t.pass('Create of the identical value succeeds (extends the TTL)');
  await t.rejects(e.create(enc('claim'), enc('theirs'), 600), /already exists/, 'Create of a different value fails');
  const claim = await d.get(enc('claim'));
  t.equal(claim.length, 1);
  t.ok(claim[0]!.ttl > 600, 'TTL was extended by the second Create');

  await d.put(enc('multi'), enc('a'), 600);
  await e.put(enc('multi'), enc('b'), 600);
  await d.put(enc('multi'), enc('a'), 600);
  t.same((await e.get(enc('multi'))).map((v) => dec(v.value)).sort(), ['a', 'b'], 'Put appends; duplicates merge');

  await d.put(enc('short'), enc('gone soon'), 1);
  t.equal((await e.get(enc('short'))).length, 1, 'present before expiry');
  await lab.sleep(2100);
  t.equal((await e.get(enc('short'))).length, 0, 'never returned after expiry');

  const big = Array.from({ length: 40 }, (_, i) => `${'x'.repeat(90)}-${i}`);
  await Promise.all(big.map((v) => d.put(enc('paged'), enc(v), 600)));
  const all = await e.get(enc('paged'));
  t.equal(all.length, 40, 'all 40 values (about 3.6 KB, several pages) come back');

  await t.rejects(d.put(enc('k'), new Uint8Array(1025), 60), DhtError, 'oversized value refused');
  await t.rejects(d.put(new Uint8Array(0), enc('v'), 60), /key is empty/);
  await t.rejects(d.put(enc('k'), enc('v'), -5), /TTL/);
  await t.rejects(d.put(enc('x'.repeat(300)), enc('v'), 60), /key is 300 bytes/);

  // Malformed replica RPCs get an error reply; the node keeps serving.
  await t.rejects(nodes[0]!.rpc.call({ address: nodes[5]!.address, mode: 5 }, 'dht.Put', ['junk'], { timeoutMs: 3000 }), /key/);
  t.equal(dec((await d.get(enc('key-1')))[0]!.value), 'value of key-1', 'still serving');

  // Remote callers cannot use DhtClient.*
  await t.rejects(nodes[0]!.rpc.call({ address: nodes[5]!.address, mode: 5 }, 'DhtClient.Get', ['key-1'], { timeoutMs: 3000 }), /local-only/);
});

t.test('8 of 32 nodes killed: every key still readable, then fully repaired', async (t) => {
  const lab = new VirtualLab({ seed: 32 });
  const { nodes, dhts } = await startDhtRing(32, lab, { link: { pingAfterMs: 1000, timeoutMs: 3000, unlinkedEdgeMs: 5000 } });
  t.teardown(async () => { await stopAll(nodes); await Promise.all(dhts.map((d) => d.close())); await lab.stop(); });
  t.ok(await lab.waitFor(() => consistency(nodes) === 1, 30_000), 'ring formed');
  const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
  await Promise.all(keys.map((k, i) => dhts[i % 32]!.dht.put(enc(k), enc(k), 3600)));
  // A put returns at a majority; let the remaining replica writes land before the crash.
  await lab.sleep(1000);
  // Abrupt failure: the nodes vanish from the network without any goodbye.
  const dead = new Set<number>();
  const pick = lab.random();
  while (dead.size < 8) dead.add(1 + pick.int(31));
  for (const i of dead) lab.crash(nodes[i]!);
  const alive = nodes.filter((_, i) => !dead.has(i));
  const live = dhts.filter((_, i) => !dead.has(i));
  // Reads start once the survivors have noticed the failure (link timeout 3 s here).
  t.ok(await lab.waitFor(() => consistency(alive) === 1, 30_000), 'ring healed');
  let readable = 0;
  await Promise.all(keys.map((k, i) => live[i % live.length]!.dht.get(enc(k)).then((v) => { if (v.length === 1) readable++; }, () => {})));
  t.equal(readable, 200, 'every key still readable');
  await lab.sleep(1500);
  // After repair each key has a majority of replica points held by live nodes.
  let healthy = 0;
  await Promise.all(keys.map(async (k, i) => { const v = await live[i % live.length]!.dht.get(enc(k)).catch(() => []); if (v.length === 1) healthy++; }));
  t.equal(healthy, 200, 'every key readable after repair');
  let majorityHeld = 0;
  for (const k of keys) {
    let held = 0;
    for (const p of replicaPoints(enc(k), 8)) {
      for (const d of live) { if ((await d.server.store.get(p.bytes)).entries.length > 0) { held++; break; } }
    }
    if (held >= 5) majorityHeld++;
  }
  t.equal(majorityHeld, 200, 'every key has a majority of its replica points on live nodes');
});

t.test('a node restarted with disk storage keeps its entries', async (t) => {
  // Real time here: the store's disk I/O takes real time, during which a lab's virtual clock
  // would run on and time out the node's RPCs to itself. In-memory transport, real clock.
  const dir = mkdtempSync(join(tmpdir(), 'dht-disk-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const net = new MemoryNetwork();
  const mk = async (address?: Node['address']) => {
    const n = new Node({ ...FAST, namespace: 'disk', address, listeners: [net.listener()] });
    await n.start();
    return { n, d: await attachDht(n, dir) };
  };
  const a = await mk();
  await a.d.dht.put(enc('persist'), enc('me'), 3600);
  t.same((await a.d.dht.get(enc('persist'))).map((v) => dec(v.value)), ['me'], 'a lone node holds all 8 replicas');
  const addr = a.n.address;
  await a.n.stop();
  await a.d.close();
  const b = await mk(addr);
  t.teardown(async () => { await b.n.stop(); await b.d.close(); });
  t.same((await b.d.dht.get(enc('persist'))).map((v) => dec(v.value)), ['me'], 'served again after the restart');
});

t.test('a node that leaves cleanly hands its entries to its neighbours first', async (t) => {
  // One replica point: only its two bracketing nodes hold the key, so losing both without a
  // handoff would lose it.
  const lab = new VirtualLab({ seed: 35 });
  const { nodes, dhts } = await startDhtRing(10, lab, {}, { degree: 1 });
  t.teardown(async () => { await stopAll(nodes); await Promise.all(dhts.map((d) => d.close())); await lab.stop(); });
  t.ok(await lab.waitFor(() => consistency(nodes) === 1, 10_000), 'ring formed');
  await dhts[0]!.dht.put(enc('handoff'), enc('kept'), 600);
  const point = replicaPoints(enc('handoff'), 1)[0]!;
  const holders = async () => {
    const out: number[] = [];
    for (let i = 0; i < nodes.length; i++) if (!nodes[i]!.link.leaving && (await dhts[i]!.server.store.get(point.bytes)).entries.length > 0) out.push(i);
    return out;
  };
  await lab.sleep(300);
  const first = await holders();
  t.ok(first.length >= 2, `held by ${first.length} nodes`);
  // Both leave at once: only the leave handoff can save the key.
  await Promise.all(first.slice(0, 2).map((i) => nodes[i]!.stop()));
  const rest = nodes.filter((n) => !n.link.leaving);
  t.ok(await lab.waitFor(() => consistency(rest) === 1, 10_000), 'ring healed after the two holders left');
  const reader = dhts.find((_, i) => !nodes[i]!.link.leaving)!;
  t.same((await reader.dht.get(enc('handoff'))).map((v) => dec(v.value)), ['kept'], 'the key survived both holders leaving');
});

for (const [name, repairMs] of [['on the periodic check', 1500], ['soon after the crash, long before the periodic check', 300_000]] as const) {
t.test(`a point whose two holders both crash is restored without anyone reading the key: ${name}`, async (t) => {
  const lab = new VirtualLab({ seed: 36 });
  const { nodes, dhts } = await startDhtRing(16, lab, { link: { pingAfterMs: 1000, timeoutMs: 3000, unlinkedEdgeMs: 5000 } }, { repairMs });
  t.teardown(async () => { await stopAll(nodes); await Promise.all(dhts.map((d) => d.close())); await lab.stop(); });
  t.ok(await lab.waitFor(() => consistency(nodes) === 1, 30_000), 'ring formed');
  const key = enc('unread');
  await dhts[0]!.dht.put(key, enc('precious'), 3600);
  await lab.sleep(500);
  const point = replicaPoints(key, 8)[2]!;
  const holders = new Set<number>();
  for (const [i, d] of dhts.entries()) if ((await d.server.store.get(point.bytes)).entries.length > 0) holders.add(i);
  t.equal(holders.size, 2, 'point 2 is held by its two bracketing nodes');
  for (const i of holders) lab.crash(nodes[i]!);
  const alive = nodes.filter((_, i) => !holders.has(i));
  const live = dhts.filter((_, i) => !holders.has(i));
  t.ok(await lab.waitFor(() => consistency(alive) === 1, 30_000), 'ring healed');
  const restored = async () => {
    let n = 0;
    for (const d of live) if ((await d.server.store.get(point.bytes)).entries.length > 0) n++;
    return n;
  };
  let n = 0;
  const end = lab.now() + 20_000;
  while (lab.now() < end && (n = await restored()) < 2) await lab.sleep(250);
  t.equal(n, 2, 'the new bracketing nodes of point 2 hold the value again');
  t.ok(live.some((d) => d.server.replicator.stats.restored > 0), 'restored by re-replication');
  if (repairMs > 20_000) t.ok(live.some((d) => d.server.replicator.stats.early > 0), 'by a sweep brought forward when the near neighbours were lost');
  t.equal(live.reduce((a, d) => a + d.dht.stats.gets, 0), 0, 'no Get was involved');
});
}
