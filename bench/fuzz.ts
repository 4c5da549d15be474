// npm run fuzz [-- --count N] [-- --seed S] — random and mutated packets through every wire
// decoder (overlay: value, link, AH, RPC, NodeInfo; secure edge: handshake packets, transport
// headers, identity payloads, Session.open, the Noise message readers) and through the full
// receive path of a SecureEdgeListener. Every decoder call must return or throw its module's
// typed error; the listener must absorb everything and keep working. Exit 1 on any failure.
import { formatFuzz, runFuzz, type Suite } from './fuzz/run.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i > 0) return process.argv[i + 1];
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`));
  return eq?.slice(name.length + 3);
}

function num(name: string, dflt: number): number {
  const v = arg(name);
  if (v === undefined) return dflt;
  const n = Number(v.replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n < 0) { console.error(`--${name}: not a non-negative integer: ${v}`); process.exit(2); }
  return n;
}

async function main(): Promise<void> {
  const count = num('count', 1_000_000);
  const seed = num('seed', 0x5eed) >>> 0;
  const suite = (arg('suite') ?? 'all') as Suite;
  if (suite !== 'all' && suite !== 'secure') { console.error('--suite must be all or secure'); process.exit(2); }
  process.stderr.write(`fuzzing ${count.toLocaleString('en-US')} packets, seed 0x${seed.toString(16)}, suite ${suite}\n`);
  const res = await runFuzz({ count, seed, suite, progress: (l) => process.stderr.write(`  ${l}\n`) });
  console.log(formatFuzz(res));
  process.exit(res.failures.length === 0 ? 0 : 1);
}

main().catch((e) => { console.error('fuzz harness crashed:', e); process.exit(1); });
