// The VPN's Prometheus metrics, added to the control API's registry (control/metrics.ts):
// frames, bytes and offloaded super-packets each way, drops by reason, and the TAP's own
// write drops. Read from the mode's stats object at scrape time, never per frame.
import type { Registry } from 'prom-client';
import { counterOf, type Sample } from '../control/metrics.js';
import type { FramePathStats } from './frame-path.js';
import type { TapStats } from './tap.js';

/** A running mode's counters: the frame path's, received frames, and any `drop…` fields it adds. */
export type VpnStats = FramePathStats & { rxFrames: number; rxBytes: number };

/** dropNoLink → no_link. */
const reasonOf = (field: string): string => field.slice(4).replace(/[A-Z]/g, (c, i: number) => (i ? '_' : '') + c.toLowerCase());

export function addVpnMetrics(r: Registry, stats: () => VpnStats | undefined, tap: () => TapStats | undefined): void {
  const get = (k: keyof VpnStats): number => stats()?.[k] ?? 0;
  const both = (rx: keyof VpnStats, tx: keyof VpnStats) => (): Sample[] => [[{ direction: 'in' }, get(rx)], [{ direction: 'out' }, get(tx)]];
  counterOf(r, 'brunet_vpn_frames_total', 'VPN frames: in = from the overlay to the TAP, out = from the TAP to the overlay', ['direction'], both('rxFrames', 'txFrames'));
  counterOf(r, 'brunet_vpn_bytes_total', 'VPN frame bytes, as frames_total', ['direction'], both('rxBytes', 'txBytes'));
  counterOf(r, 'brunet_vpn_offload_total', 'VPN frames that crossed as offloaded super-packets (TSO/GSO), as frames_total', ['direction'], both('rxOffload', 'txOffload'));
  counterOf(r, 'brunet_vpn_software_segments_total', 'Frames cut in software from received super-packets the TAP could not take whole', [], () => [[{}, get('softwareSegments')]]);
  counterOf(r, 'brunet_vpn_drops_total', 'VPN frames dropped, by reason (tap_write: the TAP refused a write)', ['reason'], () => {
    const s = stats() as Record<string, number> | undefined;
    const out: Sample[] = s ? Object.keys(s).filter((k) => /^drop[A-Z]/.test(k)).map((k) => [{ reason: reasonOf(k) }, s[k]!]) : [];
    return [...out, [{ reason: 'tap_write' }, tap()?.writeDrops ?? 0]];
  });
}
