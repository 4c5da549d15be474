// bench:web's fetcher, a process of its own so that only the server's side is counted. It
// fetches as the web page does: conditionally, sending back the ETag it last got for a path
// (If-None-Match; the page's fetch with cache 'no-cache' makes the browser do the same), with
// gzip accepted (fetch() asks for it, as browsers do).
//   node web-fetch.js <port> every <seconds> <paths JSON>   each path once a second, in sequence,
//     for <seconds>; prints {path: {ok, notModified, status, bytes, ms[]}} as JSON at the end
//   node web-fetch.js <port> burst <count> <paths JSON>    each path <count> times back to back
//     conditionally (a 304 while unchanged), then <count> times without an ETag (always a 200),
//     printing "start <path> cond|full" and "end <path> cond|full" lines around each, then the
//     results of the conditional ones
export interface PathResult { ok: number; notModified: number; status: number; bytes: number; ms: number[]; error?: string }

const [port, mode, n, pathsJson] = process.argv.slice(2);
const paths = JSON.parse(pathsJson ?? '[]') as string[];
const r: Record<string, PathResult> = Object.fromEntries(paths.map((p) => [p, { ok: 0, notModified: 0, status: 0, bytes: 0, ms: [] }]));
const etags = new Map<string, string>();

async function get(p: string, conditional = true): Promise<void> {
  const t0 = performance.now(), x = r[p]!;
  try {
    const tag = conditional ? etags.get(p) : undefined;
    const res = await fetch(`http://127.0.0.1:${port}${p}`, { headers: tag ? { 'if-none-match': tag } : {} });
    const body = await res.arrayBuffer();
    x.status = res.status;
    x.ms.push(performance.now() - t0);
    if (res.status === 304) x.notModified++;
    else if (res.ok) { x.ok++; x.bytes = body.byteLength; const e = res.headers.get('etag'); if (e) etags.set(p, e); }
  } catch (e) { x.error = (e as Error).message; }
}

async function main(): Promise<void> {
  if (mode === 'every') {
    const end = Date.now() + Number(n) * 1000;
    while (Date.now() < end) {
      const t = Date.now();
      for (const p of paths) await get(p);
      await new Promise((ok) => setTimeout(ok, Math.max(0, 1000 - (Date.now() - t))));
    }
  } else if (mode === 'burst') {
    for (const p of paths) {
      await get(p); // the first answer's ETag, as a page that has been open a while holds
      r[p] = { ok: 0, notModified: 0, status: 0, bytes: 0, ms: [] };
      process.stdout.write(`start ${p} cond\n`);
      for (let i = 0; i < Number(n); i++) await get(p);
      process.stdout.write(`end ${p} cond\n`);
      const cond = r[p]!;
      r[p] = { ok: 0, notModified: 0, status: 0, bytes: 0, ms: [] };
      process.stdout.write(`start ${p} full\n`);
      for (let i = 0; i < Number(n); i++) await get(p, false);
      process.stdout.write(`end ${p} full\n`);
      r[p] = cond;
    }
  } else throw new Error(`mode must be every or burst, got ${mode}`);
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

main().then(() => process.exit(0), (e) => { console.error(`web-fetch: ${(e as Error).message}`); process.exit(1); });
