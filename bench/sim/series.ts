// The simulator's time series: one row per sample window, appended to timeseries.csv as it
// grows (a long run can be watched, a killed one kept), and plotted at the end into
// timeseries.svg (fractions) and rates.svg (traffic per live node, its own scale).
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { svgPlot } from './plot.js';

export interface Row {
  virtual_s: number;
  live: number;
  joins_total: number;
  deaths_total: number;
  consistency: number;
  /** NaN when no probe completed in the window (and before probing starts). */
  route_success: number;
  hops_mean: number;
  dht_availability: number;
  msgs_per_node_per_s: number;
  bytes_per_node_per_s: number;
  wall_s: number;
}

export const COLUMNS: (keyof Row)[] = ['virtual_s', 'live', 'joins_total', 'deaths_total', 'consistency', 'route_success', 'hops_mean', 'dht_availability', 'msgs_per_node_per_s', 'bytes_per_node_per_s', 'wall_s'];

const cell = (k: keyof Row, v: number): string => {
  if (!Number.isFinite(v)) return '';
  if (k === 'consistency' || k === 'route_success' || k === 'dht_availability') return v.toFixed(4);
  return String(Math.round(v * 100) / 100);
};

export class TimeSeries {
  readonly rows: Row[] = [];
  private readonly csv: string | undefined;

  constructor(private readonly out: string | undefined) {
    if (!out) return;
    mkdirSync(out, { recursive: true });
    this.csv = join(out, 'timeseries.csv');
    writeFileSync(this.csv, COLUMNS.join(',') + '\n');
  }

  add(r: Row): void {
    this.rows.push(r);
    if (this.csv) appendFileSync(this.csv, COLUMNS.map((k) => cell(k, r[k])).join(',') + '\n');
  }

  /** Writes the two plots (nothing without --out); the rate panel's scale ignores windows before `scaleFromS` (the formation burst). */
  plot(title: string, nodes: number, scaleFromS = 0): void {
    if (!this.out) return;
    const pts = (f: (r: Row) => number): [number, number][] => this.rows.map((r) => [r.virtual_s, f(r)]);
    writeFileSync(join(this.out, 'timeseries.svg'), svgPlot(title, 'virtual seconds', [
      { name: 'consistency', color: '#1f77b4', points: pts((r) => r.consistency) },
      { name: 'routing success', color: '#2ca02c', points: pts((r) => r.route_success) },
      { name: 'DHT availability', color: '#d62728', points: pts((r) => r.dht_availability) },
      { name: 'live nodes / N', color: '#ff7f0e', points: pts((r) => r.live / nodes) },
    ]));
    const msgs = pts((r) => r.msgs_per_node_per_s), kb = pts((r) => r.bytes_per_node_per_s / 1000);
    const top = Math.max(1e-9, ...[...msgs, ...kb].filter((p) => p[0] >= scaleFromS).map((p) => p[1]).filter(Number.isFinite));
    writeFileSync(join(this.out, 'rates.svg'), svgPlot(`${title}: traffic per live node`, 'virtual seconds', [
      { name: 'packets / node / s', color: '#9467bd', points: msgs },
      { name: 'KB / node / s', color: '#8c564b', points: kb },
    ], top * 1.05));
  }
}
