// The offload header (with software TSO on whatever decodes), fragment requests and fragment
// reassembly under random and mutated input: typed rejections only, never a throw or a leak.
import t from 'tap';
import { prng } from '../bench/fuzz/rng.js';
import { fuzzTarget } from '../bench/fuzz/target.js';
import { vpnTargets } from '../bench/fuzz-vpn.js';

t.test('fuzzed offload headers, fragment requests and fragments', async (t) => {
  for (const target of vpnTargets(prng(0xf00d))) {
    const failures: string[] = [];
    const res = fuzzTarget(target, 20_000, prng(0xbeef), failures);
    t.same(failures, [], `${target.name}: no failure in ${res.calls} inputs`);
    t.ok(res.returned > 0 && res.returned + res.typedErrors === res.calls, `${target.name}: ${res.returned} accepted, ${res.typedErrors} rejected`);
  }
});
