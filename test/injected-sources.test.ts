// The node code takes its clock and random source injected (the developers' guide): the
// simulator's "one seed, one trace" depends on it. A stray Math.random() in the DHT's
// re-replication jitter once made 2,000-node churn runs differ after about 4 virtual minutes.
// This scans src/ (the programs in src/cli aside) for direct reads of the real time or of
// Math.random, outside the few places where they are the point.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** file → why it may read the real time (never Math.random). */
const ALLOWED: Record<string, string> = {
  'src/util/clock.ts': 'realClock itself',
  'src/util/progress.ts': 'progress lines on a terminal: a display default, overridable',
  'src/util/secret-file.ts': 'a temporary file name',
  'src/edge/ca/authority.ts': 'the CA tool\'s default signing time, overridable',
  'src/vpn/get-state.ts': 'the round-trip time shown by groupvpn status',
};

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

t.test('no Math.random, Date.now or performance.now in node code outside the allowed places', async (t) => {
  const found: string[] = [];
  for (const f of files(join(ROOT, 'src'))) {
    const rel = relative(ROOT, f);
    if (rel.startsWith('src/cli/')) continue;
    readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
      const code = line.replace(/\/\/.*$/, '').replace(/^\s*\*.*$/, ''); // comments do not count
      if (/Math\.random\s*\(/.test(code)) found.push(`${rel}:${i + 1}: Math.random (take a RandomSource)`);
      if (/\b(Date\.now|performance\.now)\s*\(/.test(code) && !(rel in ALLOWED)) found.push(`${rel}:${i + 1}: real time (take a Clock)`);
    });
  }
  t.same(found, [], 'every node component reads time and randomness through what it was given');
});
