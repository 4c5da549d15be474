// bench:vpn's pure parts: the --paths option, the switch/router verdict against the issue's
// target (≥ 0.8× router mode's throughput, ≤ 1.2× its added RTT), and the social/router verdict
// (≥ 0.9× router mode's throughput).
import fc from 'fast-check';
import t from 'tap';
import { parsePaths, PATHS } from '../bench/lab/vpn-paths.js';
import { SWITCH_TARGET, switchVsRouter, verdictLines } from '../bench/lab/switch-verdict.js';
import { SOCIAL_TARGET, socialVerdictLine, socialVsRouter } from '../bench/lab/social-verdict.js';

t.test('--paths: all by default, a chosen subset, one-line errors', async (t) => {
  t.same([...parsePaths(undefined)], [...PATHS]);
  t.same([...parsePaths('router,switch')].sort(), ['router', 'switch']);
  t.same([...parsePaths('router,social')].sort(), ['router', 'social'], 'the SocialVPN path is a choice');
  t.same([...parsePaths(' switch , router ,')].sort(), ['router', 'switch'], 'blanks and a trailing comma are ignored');
  t.throws(() => parsePaths('router,ipsec'), /--paths: unknown ipsec \(known: tinc, /);
  t.throws(() => parsePaths(','), /--paths: expected a comma-separated list/);
  t.throws(() => parsePaths('plain'), /unknown plain/, 'plain is always measured, not a choice');
});

t.test('the verdict: ratios against the target, at and beyond its edges', async (t) => {
  const v = switchVsRouter({ mbit: 400, addedMs: 1.5 }, { mbit: 500, addedMs: 1.25 });
  t.equal(v.throughput, 0.8);
  t.equal(v.addedRtt, 1.2);
  t.ok(v.throughputMet && v.addedRttMet, 'exactly 0.8× and 1.2× meet the target');
  t.same(verdictLines(v), [
    'switch/router throughput: 0.80× (target ≥ 0.8: met)',
    'switch/router added RTT (median, pings 20 ms apart): 1.20× (target ≤ 1.2: met)',
  ]);
  const miss = switchVsRouter({ mbit: 390, addedMs: 1.6 }, { mbit: 500, addedMs: 1.25 });
  t.notOk(miss.throughputMet);
  t.notOk(miss.addedRttMet);
  t.match(verdictLines(miss, '2 ms apart')[0], /0\.78× \(target ≥ 0\.8: MISSED\)/);
  t.match(verdictLines(miss, '2 ms apart')[1], /added RTT \(2 ms apart\): 1\.28× \(target ≤ 1\.2: MISSED\)/);
});

t.test('the verdict without a positive router figure decides nothing', async (t) => {
  const v = switchVsRouter({ mbit: 400, addedMs: 0.5 }, { mbit: 0, addedMs: -0.01 });
  t.ok(Number.isNaN(v.throughput) && Number.isNaN(v.addedRtt));
  t.notOk(v.throughputMet || v.addedRttMet);
  t.same(verdictLines(v).map((l) => l.replace(/^.*: (— .*)$/, '$1')), [
    '— (router mode has no positive figure) (target ≥ 0.8: not decided)',
    '— (router mode has no positive figure) (target ≤ 1.2: not decided)',
  ]);
  const free = switchVsRouter({ mbit: 400, addedMs: -0.003 }, { mbit: 500, addedMs: 1 });
  t.equal(free.addedRtt, 0, 'a switch path adding nothing (within the noise) counts as 0×');
  t.ok(free.addedRttMet);
});

t.test('met exactly when the ratios are within the target (property)', async (t) => {
  const pos = fc.double({ min: 0.001, max: 10_000, noNaN: true });
  fc.assert(fc.property(pos, pos, pos, pos, (sm, sa, rm, ra) => {
    const v = switchVsRouter({ mbit: sm, addedMs: sa }, { mbit: rm, addedMs: ra });
    return v.throughputMet === (sm / rm >= SWITCH_TARGET.minThroughput) && v.addedRttMet === (sa / ra <= SWITCH_TARGET.maxAddedRtt);
  }));
  t.pass('checked');
});

t.test('the social verdict line: ratio to router mode against 0.9×, added RTT, CPU per GB', async (t) => {
  t.equal(socialVerdictLine({ mbit: 900, addedMs: 0.4123, cpuPerGB: 11.24 }, 1000),
    'ipop social: 900 Mbit/s = 0.90× router mode\'s (target ≥ 0.9×: met), +0.412 ms median RTT, 11.2 CPU-s per GB', 'exactly 0.9× meets the target');
  t.equal(socialVerdictLine({ mbit: 899, addedMs: 0.5, cpuPerGB: 12 }, 1000),
    'ipop social: 899 Mbit/s = 0.90× router mode\'s (target ≥ 0.9×: MISSED), +0.500 ms median RTT, 12.0 CPU-s per GB', 'just below is missed, even when rounded to 0.90×');
  t.equal(socialVerdictLine({ mbit: 1200, addedMs: -0.004 }, 1000),
    'ipop social: 1200 Mbit/s = 1.20× router mode\'s (target ≥ 0.9×: met), -0.004 ms median RTT', 'no CPU figure, a negative added RTT within the noise');
  t.equal(socialVerdictLine({ mbit: 500, addedMs: 0.3, cpuPerGB: 9 }, undefined),
    'ipop social: 500 Mbit/s, no ratio to router mode (not measured; target ≥ 0.9×: not decided), +0.300 ms median RTT, 9.0 CPU-s per GB');
  t.match(socialVerdictLine({ mbit: 500, addedMs: 0.3 }, 0), /no ratio to router mode \(no positive figure; target ≥ 0\.9×: not decided\)/);
  t.ok(Number.isNaN(socialVsRouter(500, 0)) && Number.isNaN(socialVsRouter(500, NaN)), 'no ratio without a positive router figure');
});

t.test('met exactly when social/router ≥ 0.9 (property)', async (t) => {
  const pos = fc.double({ min: 0.001, max: 10_000, noNaN: true });
  fc.assert(fc.property(pos, pos, (s, r) => socialVerdictLine({ mbit: s, addedMs: 0.1 }, r).includes(s / r >= SOCIAL_TARGET.minThroughput ? ': met)' : ': MISSED)')));
  t.pass('checked');
});
