// node dist/bench/social-translate.js — per-packet cost of SocialVPN address translation:
// ns per translateIpv4 on a 1400-byte IPv4/TCP packet, translated back and forth in place
// (so every call rewrites both addresses and both checksums). Median of 5 runs of N calls.
// Options: --calls N (default 2000000)
import { internetChecksum, writeU16, writeU32 } from '../src/vpn/frames.js';
import { translateIpv4 } from '../src/vpn/social/translate.js';

const arg = process.argv.indexOf('--calls');
const CALLS = arg > 0 ? Number(process.argv[arg + 1]) : 2_000_000;
const A = 0xc0a80714, B = 0x0a630102, A2 = 0xac1f0001, B2 = 0xac1f0409;

const pkt = new Uint8Array(1400);
pkt[0] = 0x45; writeU16(pkt, 2, 1400); pkt[8] = 64; pkt[9] = 6;
writeU32(pkt, 12, A); writeU32(pkt, 16, B);
writeU16(pkt, 10, internetChecksum(pkt, 0, 20));
pkt[32] = 0x50; // TCP data offset; the checksum value itself does not change the cost

const runs: number[] = [];
for (let r = 0; r < 5; r++) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i += 2) {
    if (translateIpv4(pkt, A, A2, B, B2) !== 'ok' || translateIpv4(pkt, A2, A, B2, B) !== 'ok') throw new Error('translation failed');
  }
  runs.push(Number(process.hrtime.bigint() - t0) / CALLS);
}
runs.sort((a, b) => a - b);
console.log(`translateIpv4, 1400-byte TCP packet: ${runs[2]!.toFixed(1)} ns/packet (median of 5 × ${CALLS}; min ${runs[0]!.toFixed(1)}, max ${runs[4]!.toFixed(1)})`);
