// Fuzzing the secure-edge layer (≥ 100,000 packets): handshake packets, transport headers,
// identity payloads, Session.open and the Noise message readers must only ever return or
// throw their typed error, and a SecureEdgeListener fed garbage and mutated real packets in
// every state must absorb them and keep working. `npm run fuzz` runs the same harness at
// 1,000,000 packets over every decoder. Seed: SECURE_FUZZ_SEED (default 0x5eed).
import t from 'tap';
import { formatFuzz, runFuzz } from '../bench/fuzz/run.js';

const SEED = Number(process.env.SECURE_FUZZ_SEED ?? 0x5eed) >>> 0;
const COUNT = 110_000;

t.test('secure-wire decoders and the SecureEdgeListener receive path survive random and mutated packets', async (t) => {
  const res = await runFuzz({ count: COUNT, seed: SEED, suite: 'secure' });
  t.comment(formatFuzz(res));
  t.ok(res.total >= 100_000, `${res.total} packets in all (seed 0x${SEED.toString(16)})`);
  for (const x of res.targets) {
    t.equal(x.failures, 0, `${x.name}: ${x.calls} calls, ${x.returned} returned, ${x.typedErrors} typed errors`);
    t.ok(x.returned > 0 && x.typedErrors > 0, `${x.name}: inputs both decode and fail`);
  }
  const rc = res.receive!;
  t.ok(rc.injected >= COUNT * 0.2, `receive path: ${rc.injected} packets injected, ${rc.delivered} reached the victim`);
  t.ok(rc.handshakesCompleted > 20, `${rc.handshakesCompleted} handshakes completed under fire`);
  t.ok(rc.handshakesEndedByInjection > 0, `${rc.handshakesEndedByInjection} handshakes ended on purpose by an injected REPLY/FINISH/HELLO`);
  t.ok(rc.insiders.accepted > 0 && rc.insiders.refusedProtocol > 0 && rc.insiders.refusedIdentity > 0, `insiders: ${JSON.stringify(rc.insiders)}`);
  t.match(rc.finalCheck, /^ok/, 'the victim still completes handshakes and exchanges data both ways');
  t.same(res.failures, [], 'no failures');
});
