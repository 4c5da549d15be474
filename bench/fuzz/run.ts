// The driver: splits the packet budget over the targets and the receive path, and formats the result.
import { vpnTargets } from '../fuzz-vpn.js';
import { secureMaterial } from './material.js';
import { nativeFlowTargets } from './native-flow.js';
import { overlayTargets } from './overlay.js';
import { fuzzReceivePath, type ReceiveResult } from './receive/index.js';
import { prng, subSeed } from './rng.js';
import { secureTargets } from './secure.js';
import { fuzzTarget, type TargetResult } from './target.js';

export type Suite = 'all' | 'secure';

const WEIGHTS: Record<Suite, Record<string, number>> = {
  all: {
    decodeValue: 14, decodeLink: 12, decodeAh: 10, decodeRpc: 12, decodeNodeInfo: 10,
    decodeHandshake: 12, decodeDataHeader: 8, decodeIdentity: 8, 'Session.open': 5,
    'Noise read msg1': 1.2, 'Noise read msg2': 1, 'Noise read msg3': 0.8, receive: 6,
    decodeOffloadHeader: 4, decodeRequest: 3, 'Reassembly.add': 3, 'NativeFlow.open': 4,
  },
  secure: {
    decodeHandshake: 30, decodeDataHeader: 18, decodeIdentity: 18, 'Session.open': 10,
    'Noise read msg1': 1.5, 'Noise read msg2': 1, 'Noise read msg3': 0.5, receive: 21, 'NativeFlow.open': 5,
  },
};

export interface FuzzResult {
  seed: number;
  suite: Suite;
  targets: TargetResult[];
  receive: ReceiveResult | undefined;
  failures: string[];
  total: number;
  ms: number;
}

export async function runFuzz(o: { count: number; seed: number; suite: Suite; progress?: (line: string) => void }): Promise<FuzzResult> {
  const t0 = performance.now();
  const failures: string[] = [];
  const weights = WEIGHTS[o.suite];
  const sum = Object.values(weights).reduce((a, b) => a + b, 0);
  const alloc = Object.fromEntries(Object.entries(weights).map(([k, w]) => [k, Math.ceil((o.count * w) / sum)]));
  const mat = secureMaterial(prng(subSeed(o.seed, 'material')));
  const targets = [
    ...(o.suite === 'all' ? overlayTargets(prng(subSeed(o.seed, 'overlay pools'))) : []),
    ...(o.suite === 'all' ? vpnTargets(prng(subSeed(o.seed, 'vpn pools'))) : []),
    ...secureTargets(prng(subSeed(o.seed, 'secure pools')), mat),
    ...nativeFlowTargets(prng(subSeed(o.seed, 'native flow pools'))),
  ];
  const results: TargetResult[] = [];
  for (const t of targets) {
    const n = alloc[t.name] ?? 0;
    const res = fuzzTarget(t, n, prng(subSeed(o.seed, t.name)), failures);
    results.push(res);
    o.progress?.(`${t.name}: ${res.calls} calls, ${res.failures} failures, ${(res.ms / 1000).toFixed(1)} s`);
  }
  let receive: ReceiveResult | undefined;
  if (alloc.receive) {
    receive = await fuzzReceivePath(alloc.receive, subSeed(o.seed, 'receive'), mat, failures);
    o.progress?.(`receive path: ${receive.injected} packets, ${(receive.ms / 1000).toFixed(1)} s`);
  }
  const total = results.reduce((s, x) => s + x.calls, 0) + (receive?.injected ?? 0);
  return { seed: o.seed, suite: o.suite, targets: results, receive, failures: failures.filter(Boolean), total, ms: performance.now() - t0 };
}

const fmt = (n: number) => n.toLocaleString('en-US');

export function formatFuzz(res: FuzzResult): string {
  const lines: string[] = [];
  lines.push(`seed 0x${res.seed.toString(16)}, ${fmt(res.total)} packets, ${(res.ms / 1000).toFixed(1)} s`);
  lines.push('');
  lines.push('| target | calls | decoded | typed error / rejected | failures | time s |');
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const t of res.targets) {
    const typed = t.name === 'Session.open' ? `${fmt(t.typedErrors)} (null)` : fmt(t.typedErrors);
    lines.push(`| ${t.name} | ${fmt(t.calls)} | ${fmt(t.returned)} | ${typed} | ${t.failures} | ${(t.ms / 1000).toFixed(2)} |`);
  }
  const rc = res.receive;
  if (rc) {
    lines.push(`| SecureEdgeListener receive path | ${fmt(rc.injected)} | ${fmt(rc.delivered)} delivered | - | ${res.failures.filter((f) => f.startsWith('receive path')).length} | ${(rc.ms / 1000).toFixed(2)} |`);
    lines.push('');
    lines.push(`receive path by phase: ${Object.entries(rc.phases).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}`);
    lines.push(`handshakes completed under fire: ${rc.handshakesCompleted}; ended on purpose by one injected REPLY/FINISH/HELLO: ${rc.handshakesEndedByInjection}; ` +
      `insider identity payloads: ${rc.insiders.accepted} accepted, ${rc.insiders.refusedProtocol} refused as malformed, ${rc.insiders.refusedIdentity} refused for a bad signature`);
    lines.push(`victim stats: ${JSON.stringify(rc.victim)}`);
    lines.push(`final check: ${rc.finalCheck}`);
  }
  lines.push('');
  if (res.failures.length === 0) lines.push('no failures');
  else {
    lines.push(`${res.failures.length} FAILURES (first ${Math.min(res.failures.length, 20)}):`);
    for (const f of res.failures.slice(0, 20)) lines.push(`  ${f}`);
  }
  return lines.join('\n');
}

