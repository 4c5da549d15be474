// Registrations (Brunet's RpcDhtProxy): an entry is re-put every TTL/2 while the node
// lives, and retried after a failure.
import t from 'tap';
import { Registrations } from '../src/dht/registration.js';
import type { Dht } from '../src/dht/dht.js';
import { realClock } from '../src/util/clock.js';
import { silentLogger } from '../src/util/log.js';
import { consistency, stopAll, waitFor } from './helpers/ring.js';
import { startDhtRing } from './helpers/dht.js';

const enc = (s: string) => new TextEncoder().encode(s);

t.test('a registered entry outlives its TTL; an unregistered one expires', async (t) => {
  const { nodes, dhts } = await startDhtRing(6, 'memory');
  t.teardown(async () => { await stopAll(nodes); await Promise.all(dhts.map((d) => d.close())); });
  t.ok(await waitFor(() => consistency(nodes) === 1, 10_000), 'ring formed');
  const regs = dhts[0]!.registrations;
  await regs.register(enc('alive'), enc('yes'), 2);
  await dhts[1]!.dht.put(enc('plain'), enc('no'), 2);
  await new Promise((r) => setTimeout(r, 4500));
  t.equal((await dhts[2]!.dht.get(enc('alive'))).length, 1, 'registered entry still there after 2 TTLs');
  t.equal((await dhts[2]!.dht.get(enc('plain'))).length, 0, 'an ordinary put of the same TTL expired');
  t.equal(regs.list().length, 1);
  t.ok(regs.unregister(enc('alive'), enc('yes')));
  await new Promise((r) => setTimeout(r, 3000));
  t.equal((await dhts[2]!.dht.get(enc('alive'))).length, 0, 'gone after unregistering');
});

t.test('a failed write is retried', async (t) => {
  let calls = 0;
  const flaky = { put: async () => { calls++; if (calls <= 2) throw new Error('no majority'); } } as unknown as Dht;
  const regs = new Registrations(flaky, realClock, silentLogger);
  t.teardown(() => regs.close());
  await t.rejects(regs.register(enc('k'), enc('v'), 4), /no majority/, 'the first failure is reported');
  t.ok(await waitFor(() => calls >= 3, 5000), `retried (${calls} writes)`);
  t.ok(await waitFor(() => regs.list()[0]?.lastOk !== undefined, 1000), 'succeeded on a retry');
});
