// Signed DHT claims: a member cannot overwrite another member's live dhcp: claim; replicas
// refuse forged claims; plain values keep working for ordinary keys.
import t from 'tap';
import { DhtService } from '../src/dht/service.js';
import { TableStore } from '../src/dht/store.js';
import { isClaimValue, makeClaim } from '../src/dht/claims.js';
import { replicaPoints } from '../src/dht/placement.js';
import { Identity } from '../src/edge/identity.js';
import { Mode } from '../src/routing/ah-wire.js';
import { consistency, stopAll } from './helpers/ring.js';
import { VirtualLab } from './helpers/virtual.js';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

t.test('claims', async (t) => {
  const lab = new VirtualLab({ seed: 41 });
  const nodes = await lab.startRing(8);
  const ids = nodes.map(() => Identity.generate());
  const dhts = await Promise.all(nodes.map(async (n, i) => {
    const store = TableStore.memory({ clock: lab.clock });
    await store.open();
    return new DhtService(n, store, {}, i === 7 ? undefined : ids[i]);
  }));
  t.teardown(async () => { await stopAll(nodes); await Promise.all(dhts.map((d) => d.close())); await lab.stop(); });
  t.ok(await lab.waitFor(() => consistency(nodes) === 1, 10_000), 'ring formed');
  const key = enc('dhcp:ipopns:192.168.10.10');
  const [a, b] = [dhts[0]!.dht, dhts[1]!.dht];

  await a.create(key, enc('owner-a'), 600);
  const got = await b.get(key);
  t.same(got.map((v) => dec(v.value)), ['owner-a'], 'the payload comes back without the signature');
  t.ok(got[0]!.claimer?.equals(ids[0]!.address), 'and names the claimer');
  await a.create(key, enc('owner-a'), 900);
  t.pass('the owner renews its own claim');
  await t.rejects(b.create(key, enc('owner-b'), 600), /already exists/, 'Create by another member fails');
  await t.rejects(b.put(key, enc('owner-b'), 600), /already exists/, 'Put (append) by another member fails too');
  t.same((await a.get(key)).map((v) => dec(v.value)), ['owner-a'], 'the claim is unchanged');

  // A forged claim (another key's signature, or a flipped byte) is refused by the replicas.
  const point = replicaPoints(key, 8)[0]!;
  const forged = makeClaim(ids[1]!, key, enc('owner-b'));
  forged[forged.length - 1] ^= 1;
  await t.rejects(nodes[2]!.rpc.call({ address: point, mode: Mode.Greedy }, 'dht.Put', [point.bytes, forged, 600, false], { timeoutMs: 3000 }), /invalid claim/);
  const elsewhere = makeClaim(ids[1]!, enc('dhcp:other'), enc('x'));
  await t.rejects(nodes[2]!.rpc.call({ address: point, mode: Mode.Greedy }, 'dht.Put', [point.bytes, elsewhere, 600, false], { timeoutMs: 3000 }), /does not belong/);
  // An unsigned value pushed straight at the claim's points is ignored by readers.
  for (const p of replicaPoints(key, 8)) await nodes[3]!.rpc.call({ address: p, mode: Mode.Greedy }, 'dht.Put', [p.bytes, enc('junk'), 600, false], { timeoutMs: 3000 });
  t.same((await b.get(key)).map((v) => dec(v.value)), ['owner-a'], 'unsigned junk under a claim key is ignored');

  await t.rejects(dhts[7]!.dht.create(enc('dhcp:ipopns:192.168.10.99'), enc('x'), 60), /need the node key/, 'a node without a key cannot claim');
  await dhts[7]!.dht.put(enc('plain'), enc('value'), 60);
  const plain = await a.get(enc('plain'));
  t.same(plain.map((v) => dec(v.value)), ['value'], 'ordinary keys keep plain values');
  t.notOk(isClaimValue(plain[0]!.value));
});

// A writer whose routing was not settled yet can leave its claim on only a minority of the
// points (its other copies landed on nodes that are not the points' holders). Reads do not
// return a minority, but restore a genuine claim from it; plain values and an exclusive key's
// rival claim stay as they are.
t.test('a claim held by a minority of points is restored by a read', async (t) => {
  const lab = new VirtualLab({ seed: 42 });
  const nodes = await lab.startRing(12);
  const ids = nodes.map(() => Identity.generate());
  const dhts = await Promise.all(nodes.map(async (n, i) => {
    const store = TableStore.memory({ clock: lab.clock });
    await store.open();
    return new DhtService(n, store, {}, ids[i]);
  }));
  t.teardown(async () => { await stopAll(nodes); await Promise.all(dhts.map((d) => d.close())); await lab.stop(); });
  t.ok(await lab.waitFor(() => consistency(nodes) === 1, 10_000), 'ring formed');
  const reader = dhts[5]!.dht;
  const putAt = (key: Uint8Array, value: Uint8Array, which: number[]) => Promise.all(which.map((i) => {
    const p = replicaPoints(key, 8)[i]!;
    return nodes[1]!.rpc.call({ address: p, mode: Mode.Greedy }, 'dht.Put', [p.bytes, value, 600, false, key], { timeoutMs: 3000 });
  }));

  const key = enc('dhcp:ipopns:192.168.10.12');
  await putAt(key, makeClaim(ids[0]!, key, enc('owner-a')), [0, 3, 5, 6]);
  const before = reader.stats.repairs;
  t.same(await reader.get(key), [], '4 of 8 points are no majority: nothing is returned');
  t.equal(reader.stats.repairs - before, 4, 'but the 4 points that missed the claim get it');
  // The repairs are sent without waiting for them: the read after they land finds the claim.
  let got = await reader.get(key);
  for (let i = 0; i < 30 && got.length === 0; i++) { await lab.sleep(100); got = await reader.get(key); }
  t.same(got.map((v) => dec(v.value)), ['owner-a'], 'a later read finds it');
  t.ok(got[0]?.claimer?.equals(ids[0]!.address), 'signed by its owner');

  // A rival claim on a minority cannot displace the majority's claimer of an exclusive key.
  const key2 = enc('dhcp:ipopns:192.168.10.13');
  await putAt(key2, makeClaim(ids[2]!, key2, enc('owner-c')), [1, 2, 7]);
  await dhts[3]!.dht.create(key2, enc('owner-d'), 600);
  t.same((await reader.get(key2)).map((v) => dec(v.value)), ['owner-d'], 'the majority claim is read');
  await lab.sleep(500);
  t.same((await reader.get(key2)).map((v) => dec(v.value)), ['owner-d'], 'the rival was not spread over its points');
  const held = await Promise.all(replicaPoints(key2, 8).map(async (p) => {
    const r = await nodes[4]!.rpc.call({ address: p, mode: Mode.Greedy }, 'dht.Get', [p.bytes, 0], { timeoutMs: 3000 }) as { values: Array<{ value: Uint8Array }> };
    return r.values.length;
  }));
  t.same(held, [1, 1, 1, 1, 1, 1, 1, 1], 'each point holds one claim');

  // A plain value a Put left on a minority stays there: its Put failed.
  const plain = enc('plain-minority');
  await putAt(plain, enc('v'), [0, 1]);
  const r0 = reader.stats.repairs;
  t.same(await reader.get(plain), [], 'a plain minority value is not returned');
  t.equal(reader.stats.repairs, r0, 'nor restored');
});
