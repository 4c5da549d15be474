// SocialVPN against router mode (GroupVPN) in bench:vpn: the target is at least 0.9×
// router mode's TCP throughput, both measured in the same run. Added RTT (over the plain
// underlay) and daemon CPU per GB are reported beside it, with no target.

export const SOCIAL_TARGET = { minThroughput: 0.9 } as const;

/** The SocialVPN path's figures: TCP throughput (Mbit/s), added RTT (ms, median), daemon CPU-s per GB (undefined: not measured). */
export interface SocialFigures { mbit: number; addedMs: number; cpuPerGB?: number }

/** social/router throughput; NaN when router mode's figure is not positive (no ratio to take). */
export function socialVsRouter(socialMbit: number, routerMbit: number): number {
  return Number.isFinite(socialMbit) && Number.isFinite(routerMbit) && routerMbit > 0 ? socialMbit / routerMbit : NaN;
}

/** e.g. "ipop social: 930 Mbit/s = 0.93× router mode's (target ≥ 0.9×: met), +0.412 ms median RTT, 11.2 CPU-s per GB". */
export function socialVerdictLine(s: SocialFigures, routerMbit: number | undefined): string {
  const r = routerMbit === undefined ? NaN : socialVsRouter(s.mbit, routerMbit);
  const target = `target ≥ ${SOCIAL_TARGET.minThroughput}×`;
  const vs = Number.isNaN(r)
    ? `, no ratio to router mode (${routerMbit === undefined ? 'not measured' : 'no positive figure'}; ${target}: not decided)`
    : ` = ${r.toFixed(2)}× router mode's (${target}: ${r >= SOCIAL_TARGET.minThroughput ? 'met' : 'MISSED'})`;
  const cpu = s.cpuPerGB === undefined ? '' : `, ${s.cpuPerGB.toFixed(1)} CPU-s per GB`;
  return `ipop social: ${s.mbit.toFixed(0)} Mbit/s${vs}, ${s.addedMs < 0 ? '' : '+'}${s.addedMs.toFixed(3)} ms median RTT${cpu}`;
}
