// Routing over a real in-memory overlay: 24 Nodes on a MemoryNetwork, built with the ring
// helper. Exact delivery between every pair, greedy and closest delivery against a
// brute-force answer, a bounded failure for a missing address, and bounded hop counts.
import t from 'tap';
import { Address } from '../src/address/address.js';
import type { Node } from '../src/node/node.js';
import { encodeAh, Mode } from '../src/routing/ah-wire.js';
import { RpcError } from '../src/rpc/rpc-manager.js';
import { RpcCode } from '../src/rpc/rpc-wire.js';
import { seededRandom } from '../src/util/random.js';
import type { Value } from '../src/wire/value.js';
import { consistency, ringCorrect, stopAll } from './helpers/ring.js';
import { VirtualLab } from './helpers/virtual.js';

const N = 24;
const RPC_TIMEOUT = 5000;
const rnd = seededRandom(Number(process.env.ROUTING_SEED ?? 20240611));

/** A random ring address that is no node's address. */
function freshAddress(nodes: Node[]): Address {
  for (;;) {
    const a = Address.random(rnd);
    if (!nodes.some((n) => n.address.equals(a))) return a;
  }
}
/** Brute force: the node closest to a (absolute ring distance). */
function closestNode(nodes: Node[], a: Address): Node {
  return nodes.reduce((best, n) => (n.address.absDistanceTo(a) < best.address.absDistanceTo(a) ? n : best));
}
/** Brute force: the two nodes bracketing a (first clockwise, first counter-clockwise). */
function bracketNodes(nodes: Node[], a: Address): [Node, Node] {
  const left = nodes.reduce((best, n) => (a.leftDistanceTo(n.address) < a.leftDistanceTo(best.address) ? n : best));
  const right = nodes.reduce((best, n) => (a.rightDistanceTo(n.address) < a.rightDistanceTo(best.address) ? n : best));
  return [left, right];
}
const keyOf = (v: Value) => (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array) ? v.address : undefined);
const sum = (nodes: Node[], f: (n: Node) => number) => nodes.reduce((s, n) => s + f(n), 0);

t.test('routing on a 24-node in-memory ring', async (t) => {
  const lab = new VirtualLab({ seed: 11 });
  t.teardown(() => lab.stop());
  const started = lab.now();
  const nodes = await lab.startRing(N);
  t.equal(nodes.length, N);

  const ok = await lab.waitFor(() => consistency(nodes) === 1 && ringCorrect(nodes), 20_000);
  t.ok(ok, `consistency 1 and correct ring neighbours within 20 s (consistency ${consistency(nodes)}, ${lab.now() - started} ms)`);
  if (!ok) return;

  await t.test('exact: every node pings every other node', async (t) => {
    const noRoute0 = sum(nodes, (n) => n.router.stats.noRoute);
    const calls: Promise<string | null>[] = [];
    for (let i = 0; i < N; i++) {
      for (let j = 0; j < N; j++) {
        if (i === j) continue;
        const x = `ping ${i}->${j} ✓`;
        calls.push(nodes[i]!.rpc.call({ address: nodes[j]!.address, mode: Mode.Exact }, 'sys:link.Ping', [x], { timeoutMs: RPC_TIMEOUT })
          .then((r) => (r === x ? null : `${i}->${j}: echoed ${JSON.stringify(r)}`), (e) => `${i}->${j}: ${(e as Error).message}`));
      }
    }
    const res = await Promise.all(calls);
    t.equal(calls.length, N * (N - 1));
    const bad = res.filter((r) => r !== null);
    t.same(bad.slice(0, 10), [], `${calls.length} pings echoed (${bad.length} failed)`);
    t.equal(sum(nodes, (n) => n.router.stats.noRoute) - noRoute0, 0, 'no exact packet was unroutable');
  });

  await t.test('greedy: a random address reaches the node closest to it', async (t) => {
    const bad: string[] = [];
    const jobs: Promise<void>[] = [];
    for (let k = 0; k < 60; k++) {
      const target = freshAddress(nodes);
      const from = nodes[rnd.int(N)]!;
      const want = closestNode(nodes, target);
      jobs.push(from.rpc.call({ address: target, mode: Mode.Greedy }, 'sys:link.GetNodeInfo', [], { timeoutMs: RPC_TIMEOUT }).then((r) => {
        if (keyOf(r) !== want.address.key) bad.push(`greedy to ${target.key}: answered by ${String(keyOf(r))}, closest is ${want.address.key}`);
      }, (e) => { bad.push(`greedy to ${target.key}: ${(e as Error).message}`); }));
    }
    // Targets right next to a node (just past it) must land on that node.
    for (const n of nodes) {
      const target = Address.fromBigInt((n.address.value + 2n) % (1n << 160n));
      if (nodes.some((m) => m.address.equals(target))) continue;
      const from = nodes[rnd.int(N)]!;
      jobs.push(from.rpc.call({ address: target, mode: Mode.Greedy }, 'sys:link.GetNodeInfo', [], { timeoutMs: RPC_TIMEOUT }).then((r) => {
        if (keyOf(r) !== n.address.key) bad.push(`greedy next to ${n.address.key}: answered by ${String(keyOf(r))}`);
      }, (e) => { bad.push(`greedy next to ${n.address.key}: ${(e as Error).message}`); }));
    }
    await Promise.all(jobs);
    t.same(bad, [], `${jobs.length} greedy calls answered by the closest node`);
  });

  await t.test('closest: maxResults 2 returns the two nodes bracketing the address', async (t) => {
    const bad: string[] = [];
    const jobs: Promise<void>[] = [];
    for (let k = 0; k < 40; k++) {
      const target = freshAddress(nodes);
      const from = nodes[rnd.int(N)]!;
      const want = bracketNodes(nodes, target).map((n) => n.address.key).sort();
      jobs.push(from.rpc.invoke({ address: target, mode: Mode.Closest }, 'sys:link.GetNodeInfo', [], { maxResults: 2, timeoutMs: RPC_TIMEOUT }).then((rs) => {
        const got = rs.map((r) => String(keyOf(r))).sort();
        if (got.join() !== want.join()) bad.push(`closest to ${target.key} from ${from.address.key}: got ${got.join(' ')}, want ${want.join(' ')}`);
      }, (e) => { bad.push(`closest to ${target.key}: ${(e as Error).message}`); }));
    }
    await Promise.all(jobs);
    t.same(bad, [], `${jobs.length} closest-mode calls got both bracketing nodes`);
  });

  await t.test('exact to a missing address fails with RpcError (no reply) within the timeout', async (t) => {
    const noRoute0 = sum(nodes, (n) => n.router.stats.noRoute);
    const results = await Promise.all([0, 1, 2].map(async () => {
      const target = freshAddress(nodes);
      const t0 = lab.now();
      try {
        const r = await nodes[rnd.int(N)]!.rpc.call({ address: target, mode: Mode.Exact }, 'sys:link.Ping', ['nobody'], { timeoutMs: 1500 });
        return { err: undefined as unknown, elapsed: lab.now() - t0, r };
      } catch (e) {
        return { err: e, elapsed: lab.now() - t0, r: undefined };
      }
    }));
    for (const { err, elapsed, r } of results) {
      t.ok(err instanceof RpcError, `rejected with RpcError (got ${err === undefined ? `a reply ${JSON.stringify(r)}` : (err as Error).name})`);
      if (err instanceof RpcError) t.equal(err.code, RpcCode.Timeout, `code ${RpcCode.Timeout} (no reply): ${err.message}`);
      t.ok(elapsed >= 1400 && elapsed < 3000, `gave up after ${elapsed} ms (timeout 1500 ms)`);
    }
    t.ok(sum(nodes, (n) => n.router.stats.noRoute) - noRoute0 >= 3, 'the closest nodes counted the packets as unroutable');
  });

  await t.test('hop counts are bounded', async (t) => {
    // A private payload type: each router records the hop count of what it receives.
    const PTYPE = 0xe7;
    const hops = new Map<string, number>();
    for (const n of nodes) n.router.register(PTYPE, (payload, h) => { hops.set(`${h.src.key}>${n.address.key}`, h.hops); });
    const ttlDrops0 = sum(nodes, (n) => n.router.stats.ttlDrops);
    const fwd0 = sum(nodes, (n) => n.router.stats.forwarded);
    for (const a of nodes) for (const b of nodes) if (a !== b) a.router.send(b.address, Mode.Exact, PTYPE, new Uint8Array([1, 2, 3]));
    const all = await lab.waitFor(() => hops.size === N * (N - 1), 5000, 20);
    t.ok(all, `all ${N * (N - 1)} routed packets delivered (${hops.size})`);
    const hs = [...hops.values()];
    const max = Math.max(...hs), mean = hs.reduce((s, h) => s + h, 0) / hs.length;
    const ttl = nodes[0]!.router.defaultTtl();
    t.ok(hs.every((h) => h >= 1), 'every packet crossed at least one edge');
    t.ok(max <= ttl, `max hops ${max} within the default TTL ${ttl}`);
    t.ok(max <= N / 2, `max hops ${max} ≤ N/2 = ${N / 2} (mean ${mean.toFixed(2)})`);
    t.ok(mean <= 4, `mean hops ${mean.toFixed(2)} ≤ 4`);
    t.equal(sum(nodes, (n) => n.router.stats.ttlDrops) - ttlDrops0, 0, 'no TTL drops');
    t.equal(sum(nodes, (n) => n.router.stats.forwarded) - fwd0, hs.reduce((s, h) => s + h, 0), 'forwarded count equals the sum of hops');
    t.equal(sum(nodes, (n) => n.router.stats.malformed), 0, 'no malformed routed packets');
    t.equal(sum(nodes, (n) => n.rpc.stats.malformed), 0, 'no malformed RPC messages');

    // A packet whose TTL is shorter than its path is dropped (and counted) where it runs out.
    // Take the pair with the longest path seen above (shortcuts may make any given pair 1 hop).
    const [key, longest] = [...hops].reduce((a, b) => (b[1] > a[1] ? b : a));
    const [srcKey, dstKey] = key.split('>');
    const src = nodes.find((n) => n.address.key === srcKey)!, dst = nodes.find((n) => n.address.key === dstKey)!;
    t.ok(longest >= 2, `the longest path is ${longest} hops`);
    hops.delete(key);
    const before = sum(nodes, (n) => n.router.stats.ttlDrops);
    // Hand it to src's router as if it had arrived from one of its connections, under a source
    // address that is no node's (a packet claiming to come from a node it reaches is refused
    // there as forged, and from src itself at src).
    const via = src.table.structured[0]!;
    const origin = Address.random(seededRandom(99));
    const pkt = encodeAh({ mode: Mode.Exact, flags: 0, hops: 0, ttl: 1, src: origin, dst: dst.address, ptype: PTYPE }, new Uint8Array([9]));
    const viaKey = `${origin.key}>${dst.address.key}`;
    hops.delete(viaKey);
    src.link.events.emit('routed', pkt, via);
    const dropped = await lab.waitFor(() => sum(nodes, (n) => n.router.stats.ttlDrops) > before, 2000, 10);
    t.ok(dropped, 'TTL 1 over a longer path: dropped and counted');
    await lab.sleep(50);
    t.notOk(hops.has(viaKey), 'and not delivered');
    const forged0 = src.router.stats.forgedSource;
    src.link.events.emit('routed', encodeAh({ mode: Mode.Exact, flags: 0, hops: 0, ttl: 16, src: src.address, dst: dst.address, ptype: PTYPE }, new Uint8Array([9])), via);
    t.equal(src.router.stats.forgedSource, forged0 + 1, 'a packet from a peer claiming our own address is refused, not forwarded');
  });

  await stopAll(nodes);
  t.ok(nodes.every((n) => n.status === 'disconnected'), 'all nodes stopped');
  t.ok(lab.now() - started < 60_000, `whole test took ${lab.now() - started} ms`);
});
