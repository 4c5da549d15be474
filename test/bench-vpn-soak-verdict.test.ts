// bench:vpn-soak's verdict: the largest RSS sample after the first minute against the sample at one minute.
import t from 'tap';
import { soakVerdict } from '../bench/vpn-soak.js';

t.test('soak verdict', async (t) => {
  const flat: Array<[number, number]> = [[0, 60_000], [30, 100_000], [60, 120_000], [70, 125_000], [600, 131_000]];
  t.match(soakVerdict(flat, 60), { atWarmupKb: 120_000, maxAfterKb: 131_000, ok: true }, '9.2 % is within 10 %');
  const grows: Array<[number, number]> = [[0, 60_000], [60, 100_000], [300, 111_000], [600, 105_000]];
  t.match(soakVerdict(grows, 60), { maxAfterKb: 111_000, ok: false }, 'an 11 % peak anywhere after the first minute fails');
  t.equal(soakVerdict([[0, 1], [61, 2], [71, 2]], 60)!.atWarmupKb, 2, 'the first sample at or after one minute is the reference');
  t.equal(soakVerdict([[0, 1], [50, 2]], 60), undefined, 'no sample after the first minute: no verdict');
  t.equal(soakVerdict([[0, 1], [60, 2]], 60), undefined, 'nothing after the reference sample: no verdict');
});
