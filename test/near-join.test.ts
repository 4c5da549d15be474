// Links lost for a while (handshakes dropped, as at an overloaded node) must not keep a joining
// node out of the ring for long after the loss ends (near.ts). Virtual time; every link
// handshake between the joiner and any node but its bootstrap is dropped for its first 10 s.
// - A would-be neighbour whose link failed is held out for 4 s, doubling, not 60 s (on both
//   sides: before, the joiner stayed out for a minute).
// - A joiner with no structured link whose join was answered links to the nodes it learned of
//   3 s after the answer (JOIN_LINK_WAIT_MS), instead of waiting for its next join, whose
//   back-off goes 1, 2, 4, 8, 16 s (before, with 20 s of loss, it waited for the join at 31 s).
import t, { type Test } from 'tap';
import { CODES, PTYPE_LINK } from '../src/connection/link-wire.js';
import { Node } from '../src/node/node.js';
import { consistency, FAST } from './helpers/ring.js';
import { VirtualLab } from './helpers/virtual.js';

const START = CODES.indexOf('start'), REPLY = CODES.indexOf('reply');

/** A ring of n, then a joiner whose handshakes with all but the bootstrap are lost for lossMs; the virtual ms it took the ring to be consistent with it. */
async function joinThroughLoss(t: Test, seed: number, n: number, lossMs: number): Promise<{ took: number; dropped: number; x: Node; boot: Node }> {
  const lab = new VirtualLab({ seed });
  t.teardown(() => lab.stop());
  const nodes = await lab.startRing(n);
  t.ok(await lab.waitFor(() => consistency(nodes) === 1, 30_000), `the ring of ${n} formed`);
  const listener = lab.listener();
  const joiner = listener.ta.key, boot = nodes[0]!.info().tas[0]!.key;
  const t0 = lab.now();
  let dropped = 0;
  lab.net.intercept = (p, from) => {
    const ends = [from.localTA.key, from.remoteTA.key];
    if (p[0] === PTYPE_LINK && (p[2] === START || p[2] === REPLY) && ends.includes(joiner) && !ends.includes(boot) && lab.now() < t0 + lossMs) {
      dropped++;
      return 'drop';
    }
    return 'pass';
  };
  const x = new Node({ ...FAST, ...lab.env(), namespace: 'testns', listeners: [listener], remoteTAs: nodes[0]!.info().tas });
  t.teardown(() => x.stop());
  await x.start();
  const all = [...nodes, x];
  t.ok(await lab.waitFor(() => consistency(all) === 1, 40_000), `the ring of ${n + 1} is consistent`);
  return { took: lab.now() - t0, dropped, x, boot: nodes[0]! };
}

t.test('a neighbour whose link failed in the loss is tried again within seconds of its end', async (t) => {
  const { took, dropped, x, boot } = await joinThroughLoss(t, 7, 12, 10_000);
  t.ok(x.table.get(boot.address)?.structured, 'the bootstrap is one of x\'s near neighbours (its leaf became a near link)');
  t.ok(dropped > 0, `${dropped} handshake packets dropped in the first 10 s`);
  t.ok(took > 10_000 && took < 16_000, `consistent ${took} virtual ms after the start (not within 40 s with the 60 s hold, before the change)`);
});

t.test('a joiner with no structured link links to the nodes its join named, not at its next join', async (t) => {
  const { took, dropped, x, boot } = await joinThroughLoss(t, 1, 24, 20_000);
  t.notOk(x.table.get(boot.address)?.structured, 'the bootstrap is not one of x\'s near neighbours');
  t.ok(dropped > 0, `${dropped} handshake packets dropped in the first 20 s`);
  // Its joins go out at 0, 1, 3, 7, 15 and 31 s: without the links of its own it waited for the
  // one at 31 s (31.3 s, measured before the change).
  t.ok(took > 20_000 && took < 26_000, `consistent ${took} virtual ms after the start`);
});
