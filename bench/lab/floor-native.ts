// The native floor of bench:vpn: the Node floor's relay (floor-relay.ts, no crypto, no overlay)
// with its per-packet work on a native thread (native/floor.cc): TAP → UDP and UDP → TAP never
// touch the event loop, which stays idle. What it adds over the plain underlay, against tinc's
// added RTT in the same run, says whether a native fast path for established flows can reach
// issue 17's RTT target from inside a Node process.
//
//   node dist/bench/lab/floor-native.js --tap NAME --vip 10.147.0.1/24 --local IP --peer IP
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_VPN_MTU } from '../../src/vpn/mtu.js';
import { nativeLinks } from '../../src/vpn/tap.js';
import { ROOT } from './ipop.js';

const PORT = 17600;

interface NativeFloor { stats(): { framesIn: number; framesOut: number }; close(): void }
const { values: a } = parseArgs({ options: { tap: { type: 'string' }, vip: { type: 'string' }, local: { type: 'string' }, peer: { type: 'string' } } });
if (!a.tap || !a.vip || !a.local || !a.peer) {
  console.error('usage: floor-native --tap NAME --vip IP/PREFIX --local IP --peer IP');
  process.exit(2);
}
const [vip, prefix] = a.vip.split('/');
const addon = createRequire(import.meta.url)(join(ROOT, 'build', 'Release', 'tap.node')) as { NativeFloor?: new (tap: string, local: string, peer: string, port: number, mtu: number) => NativeFloor };
if (typeof addon.NativeFloor !== 'function') { console.error('floor-native: the addon has no NativeFloor (rebuild it)'); process.exit(1); }
const floor = new addon.NativeFloor(a.tap, a.local, a.peer, PORT, DEFAULT_VPN_MTU);
const links = nativeLinks();
links.setIPv4(a.tap, vip!, Number(prefix));
links.linkUp(a.tap);
console.log(`floor relay (native thread) ${a.tap} ${a.vip} → ${a.peer}, MTU ${DEFAULT_VPN_MTU}`);
// Keeps the process alive; the thread does the work.
const keep = setInterval(() => {}, 1 << 30);
const stop = () => { clearInterval(keep); floor.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
