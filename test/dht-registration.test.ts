// Registrations (Brunet's RpcDhtProxy): an entry is re-put every TTL/2 while the node
// lives, and retried after a failure.
import t from 'tap';
import { Registrations } from '../src/dht/registration.js';
import type { Dht } from '../src/dht/dht.js';
import { silentLogger } from '../src/util/log.js';
import { consistency, stopAll } from './helpers/ring.js';
import { startDhtRing } from './helpers/dht.js';
import { VirtualLab } from './helpers/virtual.js';

const enc = (s: string) => new TextEncoder().encode(s);

t.test('a registered entry outlives its TTL; an unregistered one expires', async (t) => {
  const lab = new VirtualLab({ seed: 51 });
  const { nodes, dhts } = await startDhtRing(6, lab);
  t.teardown(async () => { await stopAll(nodes); await Promise.all(dhts.map((d) => d.close())); await lab.stop(); });
  t.ok(await lab.waitFor(() => consistency(nodes) === 1, 10_000), 'ring formed');
  const regs = dhts[0]!.registrations;
  await regs.register(enc('alive'), enc('yes'), 2);
  await dhts[1]!.dht.put(enc('plain'), enc('no'), 2);
  await lab.sleep(4500);
  t.equal((await dhts[2]!.dht.get(enc('alive'))).length, 1, 'registered entry still there after 2 TTLs');
  t.equal((await dhts[2]!.dht.get(enc('plain'))).length, 0, 'an ordinary put of the same TTL expired');
  t.equal(regs.list().length, 1);
  t.ok(regs.unregister(enc('alive'), enc('yes')));
  await lab.sleep(3000);
  t.equal((await dhts[2]!.dht.get(enc('alive'))).length, 0, 'gone after unregistering');
});

t.test('a failed write is retried', async (t) => {
  let calls = 0;
  const flaky = { put: async () => { calls++; if (calls <= 2) throw new Error('no majority'); } } as unknown as Dht;
  const lab = new VirtualLab({ seed: 52 });
  const regs = new Registrations(flaky, lab.clock, silentLogger);
  t.teardown(async () => { regs.close(); await lab.stop(); });
  await t.rejects(regs.register(enc('k'), enc('v'), 4), /no majority/, 'the first failure is reported');
  t.ok(await lab.waitFor(() => calls >= 3, 5000), `retried (${calls} writes)`);
  t.ok(await lab.waitFor(() => regs.list()[0]?.lastOk !== undefined, 1000), 'succeeded on a retry');
});
