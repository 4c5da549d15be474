// The native floor of bench:vpn: the Node floor's relay (floor-relay.ts, no crypto, no overlay)
// with its per-packet work on a native thread (native/floor.cc): TAP → UDP and UDP → TAP never
// touch the event loop, which stays idle. What it adds over the plain underlay, against tinc's
// added RTT in the same run, says whether a native fast path for established flows can reach
// issue 17's RTT target from inside a Node process.
//
// With --flow, the thread does the native fast path's real per-packet work (native/flow.cc):
// each frame sealed into the datagram the TypeScript path sends (UDP, secure DATA and routing
// headers, ChaCha20-Poly1305), each datagram opened, checked and its MACs rewritten. A fixed
// session stands in for the handshake: the two relays derive mirrored flow specs from their
// underlay addresses. The TAP then runs without offload (every frame fits one datagram), with
// a fixed MAC and a static neighbour entry for the peer (ipop answers ARP itself).
//
//   node dist/bench/lab/floor-native.js --tap NAME --vip 10.147.0.1/24 --local IP --peer IP [--flow]
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { FlowSpec } from '../../src/edge/native-flows.js';
import { DEFAULT_VPN_MTU } from '../../src/vpn/mtu.js';
import { nativeLinks } from '../../src/vpn/tap.js';
import { ROOT } from './ipop.js';

const PORT = 17600;

interface NativeFloor { stats(): { framesIn: number; framesOut: number }; close(): void }
type FloorCtor = new (tap: string, local: string, peer: string, port: number, mtu: number, flow?: FlowSpec) => NativeFloor;
const { values: a } = parseArgs({ options: { tap: { type: 'string' }, vip: { type: 'string' }, local: { type: 'string' }, peer: { type: 'string' }, flow: { type: 'boolean', default: false } } });
if (!a.tap || !a.vip || !a.local || !a.peer) {
  console.error('usage: floor-native --tap NAME --vip IP/PREFIX --local IP --peer IP [--flow]');
  process.exit(2);
}
const [vip, prefix] = a.vip.split('/');
const ip4 = (s: string) => s.split('.').reduce((x, o) => x * 256 + Number(o), 0);
const mac = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');

/** Mirrored specs: side 0 is the relay with the lower underlay address. */
function flowSpec(): FlowSpec {
  const side = ip4(a.local!) < ip4(a.peer!) ? 0 : 1;
  const key = (s: number) => new Uint8Array(32).fill(s + 1), addr = (s: number) => new Uint8Array(20).fill(0x10 * (s + 1));
  const last = Number(vip!.split('.')[3]), peerVip = `${vip!.split('.').slice(0, 3).join('.')}.${last === 1 ? 2 : 1}`;
  return {
    localEdgeId: 0x1000 + side, remoteEdgeId: 0x1000 + (1 - side), sendKey: key(side), recvKey: key(1 - side), sendEpoch: 0, recvEpoch: 0, sendCounter: 0,
    sendEpochStart: 0, rekeyPackets: 2 ** 20, rekeyMs: 120_000, graceMs: 10_000, self: addr(side), peer: addr(1 - side), ttl: 12,
    localIp: ip4(vip!), peerIp: ip4(peerVip), tapMac: Uint8Array.of(2, 0, 0, 0, 0, side + 1), gatewayMac: Uint8Array.of(2, 0, 0, 0, 0, 0xfe),
  };
}

const addon = createRequire(import.meta.url)(join(ROOT, 'build', 'Release', 'tap.node')) as { NativeFloor?: FloorCtor };
if (typeof addon.NativeFloor !== 'function') { console.error('floor-native: the addon has no NativeFloor (rebuild it)'); process.exit(1); }
const spec = a.flow ? flowSpec() : undefined;
// The flow's clock is CLOCK_MONOTONIC in ms: its epoch starts now.
const floor = new addon.NativeFloor(a.tap, a.local, a.peer, PORT, DEFAULT_VPN_MTU, spec);
const links = nativeLinks();
if (spec) execFileSync('ip', ['link', 'set', 'dev', a.tap, 'address', mac(spec.tapMac)]);
links.setIPv4(a.tap, vip!, Number(prefix));
links.linkUp(a.tap);
if (spec) {
  const peerVip = [24, 16, 8, 0].map((s) => (spec.peerIp >>> s) & 0xff).join('.');
  execFileSync('ip', ['neigh', 'replace', peerVip, 'lladdr', mac(spec.gatewayMac), 'dev', a.tap, 'nud', 'permanent']);
}
console.log(`floor relay (native thread${spec ? ', flow datagrams' : ''}) ${a.tap} ${a.vip} → ${a.peer}, MTU ${DEFAULT_VPN_MTU}`);
// Keeps the process alive; the thread does the work.
const keep = setInterval(() => {}, 1 << 30);
const stop = () => { clearInterval(keep); floor.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
