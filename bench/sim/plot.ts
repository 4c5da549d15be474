// A dependency-free SVG line plot of the simulator's time series against virtual seconds:
// by default each series is a fraction in [0, 1] (consistency, routing success, DHT
// availability, live / N); with `yMax` a rate panel on its own scale (points above it are clipped).
export interface Series { name: string; color: string; points: [x: number, y: number][] }

const W = 640, H = 320, PAD = 40;

export function svgPlot(title: string, xLabel: string, series: Series[], yMax = 1): string {
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const xMax = Math.max(1e-9, ...xs);
  const top = yMax > 0 ? yMax : 1;
  const px = (x: number) => PAD + (x / xMax) * (W - 2 * PAD);
  const py = (y: number) => H - PAD - Math.max(0, Math.min(1, y / top)) * (H - 2 * PAD);
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  // A gap in a series (NaN: nothing measured in that window) breaks its line.
  const runs = (pts: [number, number][]) => pts.reduce<[number, number][][]>((acc, p) => {
    if (!Number.isFinite(p[1])) acc.push([]); else acc.at(-1)!.push(p);
    return acc;
  }, [[]]).filter((r) => r.length > 0);
  const lines = series.flatMap((s) => runs(s.points).map((r) => `<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${r.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ')}"/>`));
  const legend = series.map((s, i) => `<text x="${W - PAD - 170}" y="${PAD + 14 * i}" fill="${s.color}" font-size="12">${esc(s.name)}</text>`);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<line x1="${PAD}" y1="${H - PAD}" x2="${W - PAD}" y2="${H - PAD}" stroke="black"/>`,
    `<line x1="${PAD}" y1="${PAD}" x2="${PAD}" y2="${H - PAD}" stroke="black"/>`,
    `<text x="${PAD - 5}" y="${PAD + 4}" text-anchor="end" font-size="11">${+top.toPrecision(3)}</text>`,
    `<text x="${PAD - 5}" y="${H - PAD + 4}" text-anchor="end" font-size="11">0</text>`,
    `<text x="${W - PAD}" y="${H - PAD + 16}" text-anchor="end" font-size="11">${+xMax.toFixed(2)}</text>`,
    `<text x="${W / 2}" y="${H - 8}" text-anchor="middle" font-size="12">${esc(xLabel)}</text>`,
    ...lines, ...legend, '</svg>',
  ].join('\n') + '\n';
}
