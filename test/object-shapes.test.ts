// Per-node counters must share one hidden class (map) across the nodes of a process: Node 20's V8
// gives each object made as { ...x, newKey } a map of its own, and with thousands of nodes every
// counter increment site then goes megamorphic (docs/architecture.md, Object shapes). The check
// needs V8's %HaveSameMap, so it runs in a child process with --allow-natives-syntax.
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import t from 'tap';

const src = (p: string) => pathToFileURL(fileURLToPath(new URL(`../src/${p}`, import.meta.url))).href;

t.test('per-node stats objects of each kind share one map across many nodes', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'shapes-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const script = join(dir, 'shapes.mjs');
  // 64 of each: V8 handed out shared maps for the first few clones and unique ones after that.
  writeFileSync(script, `
    const { MemoryNetwork } = await import(${JSON.stringify(src('transport/memory.ts'))});
    const { newIpStats } = await import(${JSON.stringify(src('transport/ip.ts'))});
    const { UdpEdgeListener } = await import(${JSON.stringify(src('transport/udp.ts'))});
    const { TunnelEdgeListener } = await import(${JSON.stringify(src('connection/tunnel.ts'))});
    const { newSecureStats } = await import(${JSON.stringify(src('edge/secure-types.ts'))});
    const { realClock } = await import(${JSON.stringify(src('util/clock.ts'))});
    const { cryptoRandom } = await import(${JSON.stringify(src('util/random.ts'))});
    const net = new MemoryNetwork();
    const make = {
      memory: () => net.listener().stats,
      ip: () => newIpStats(),
      udp: () => new UdpEdgeListener({ port: 0, host: '127.0.0.1', clock: realClock, random: cryptoRandom }).stats,
      tunnel: () => new TunnelEdgeListener(realClock, cryptoRandom, {}).stats,
      secure: () => newSecureStats(),
    };
    const out = {};
    for (const [kind, f] of Object.entries(make)) {
      const objs = Array.from({ length: 64 }, f);
      const maps = [];
      for (const o of objs) if (!maps.some((m) => %HaveSameMap(m, o))) maps.push(o);
      out[kind] = maps.length;
    }
    console.log(JSON.stringify(out));
  `);
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--import=tsx', script], { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 0, `the check ran: ${r.stderr}`);
  const maps = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, number>;
  for (const kind of ['memory', 'ip', 'udp', 'tunnel', 'secure']) t.equal(maps[kind], 1, `${kind} stats: one map for 64 objects`);
  t.end();
});
