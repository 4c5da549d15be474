// The near overlord skips a heartbeat pass that provably changes nothing (near.ts, `quiet`):
// same state version, and before the first time a rule of the pass that reads the clock
// could act. The claim covers every rule of the pass, so it is checked as a whole: one seeded
// simulation with crashes and joins (holds after failed links, stale candidates, trims,
// sweeps), run with the skip and without it, must give the same trace, and the skip must
// have skipped.
import t from 'tap';
import { Churn } from '../bench/sim/churn.js';
import { SimWorld } from '../bench/sim/world.js';
import { seededRandom } from '../src/util/random.js';

const N = 100;

async function run(skipQuiet: boolean) {
  const w = new SimWorld({ nodes: N, seed: 5, security: 'none', latency: 'lan', joinRate: 100, node: { near: { skipQuiet } } });
  w.scheduleJoins();
  for (let i = 0; i < 60 && !w.consistent(); i++) await w.clock.advance(1000);
  const formedAt = w.clock.now();
  // Lifetimes of 40 virtual s over 150 s: each node is replaced about 4 times, and the trims'
  // 30 s settle time passes between changes at many nodes.
  const churn = new Churn(w, { lifetimeS: 40, nodes: N, random: seededRandom(9) });
  churn.start();
  const consistency: number[] = [];
  for (let i = 0; i < 15; i++) { await w.clock.advance(10_000); consistency.push(w.consistency()); }
  churn.stop();
  const live = w.live;
  return {
    formedAt, consistency, ...w.traffic(), deaths: w.deaths,
    connections: live.reduce((n, x) => n + x.table.size, 0),
    skipped: live.reduce((n, x) => n + x.near.skipped, 0),
  };
}

t.test('skipping quiet near passes changes nothing in a churning ring', async (t) => {
  const off = await run(false), on = await run(true);
  t.equal(off.skipped, 0, 'with the skip off, no pass is skipped');
  t.ok(on.skipped > 10 * N, `passes skipped: ${on.skipped} (at ${N} live nodes)`);
  t.ok(off.deaths > 2 * N, `churn crashed ${off.deaths} nodes`);
  const { skipped: _a, ...a } = off, { skipped: _b, ...b } = on;
  t.same(b, a, 'the same trace: packets, bytes, consistency every 10 s, connections');
});
