// Switch mode against router mode in bench:vpn: the target is at least 0.8× router
// mode's throughput and no more than 1.2× its added RTT, both measured in the same run, each
// mode's added RTT taken over the wire it replaces (router: the plain underlay between the
// two hosts; switch: the two bridges joined directly by a veth, container to container).

export const SWITCH_TARGET = { minThroughput: 0.8, maxAddedRtt: 1.2 } as const;

/** One mode's figures: TCP throughput (Mbit/s) and added RTT (ms, median) over its wire. */
export interface ModeFigures { mbit: number; addedMs: number }

export interface SwitchVerdict {
  /** switch/router; NaN when router mode's figure is not positive (no ratio to take). */
  throughput: number;
  addedRtt: number;
  throughputMet: boolean;
  addedRttMet: boolean;
}

const ratio = (a: number, b: number): number => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : NaN);

export function switchVsRouter(sw: ModeFigures, router: ModeFigures): SwitchVerdict {
  const throughput = ratio(sw.mbit, router.mbit);
  // A switch path that adds nothing (≤ 0 ms, within the noise) meets the RTT target whatever router mode adds.
  const addedRtt = Number.isFinite(sw.addedMs) && sw.addedMs <= 0 && router.addedMs > 0 ? 0 : ratio(sw.addedMs, router.addedMs);
  return {
    throughput, addedRtt,
    throughputMet: throughput >= SWITCH_TARGET.minThroughput,
    addedRttMet: addedRtt <= SWITCH_TARGET.maxAddedRtt,
  };
}

/** The verdict's two report lines, e.g. "switch/router throughput: 0.93× (target ≥ 0.8: met)". */
export function verdictLines(v: SwitchVerdict, rttWhat = 'median, pings 20 ms apart'): string[] {
  const x = (r: number) => (Number.isNaN(r) ? '— (router mode has no positive figure)' : `${r.toFixed(2)}×`);
  const met = (ok: boolean, r: number) => (Number.isNaN(r) ? 'not decided' : ok ? 'met' : 'MISSED');
  return [
    `switch/router throughput: ${x(v.throughput)} (target ≥ ${SWITCH_TARGET.minThroughput}: ${met(v.throughputMet, v.throughput)})`,
    `switch/router added RTT (${rttWhat}): ${x(v.addedRtt)} (target ≤ ${SWITCH_TARGET.maxAddedRtt}: ${met(v.addedRttMet, v.addedRtt)})`,
  ];
}
