// The "Node floor" of bench:vpn: the least any VPN written for Node must do per packet,
// measured with the same TAP addon, offload and MTU as ipop, but with no overlay, no
// routing, no DHT and no repair. Frames from the TAP go to the one peer over node:dgram,
// cut into datagrams of at most MAX_DATAGRAM bytes (the MTU rule: nothing IP-fragmented);
// arriving messages are written to the TAP as soon as they are whole. With --aead, each
// message is sealed and opened with ChaCha20-Poly1305 (the secure edges' backend, aead.ts),
// as any secure VPN must. With --spin, the event loop never sleeps (setImmediate in a loop,
// one core per relay): what busy polling would buy against this machine's wake-up latency.
//
// It is a measuring device, not a VPN: a fixed key, no handshake, and it assumes the lab's
// lossless, in-order bridge (an incomplete message is dropped when the next one starts).
//
//   node dist/bench/lab/floor-relay.js --tap NAME --vip 10.147.0.1/24 --local IP --peer IP [--aead] [--spin]
import dgram from 'node:dgram';
import { parseArgs } from 'node:util';
import { defaultAead } from '../../src/edge/aead.js';
import { aeadDecrypt, aeadEncryptInto, TAG_LEN } from '../../src/edge/primitives.js';
import { MAX_DATAGRAM } from '../../src/transport/udp-fragments.js';
import { DEFAULT_VPN_MTU } from '../../src/vpn/mtu.js';
import { TapDevice } from '../../src/vpn/tap.js';

const PORT = 17600;
/** flags (1: the frame starts with its kernel virtio_net_hdr), message id (u16), index, count, 2 spare. */
const HEADER = 8;
const CHUNK = MAX_DATAGRAM - HEADER;
const KEY = new Uint8Array(32).fill(7);
const AD = new Uint8Array(0);

const { values: a } = parseArgs({
  options: { tap: { type: 'string' }, vip: { type: 'string' }, local: { type: 'string' }, peer: { type: 'string' }, aead: { type: 'boolean', default: false }, spin: { type: 'boolean', default: false } },
});
if (!a.tap || !a.vip || !a.local || !a.peer) {
  console.error('usage: floor-relay --tap NAME --vip IP/PREFIX --local IP --peer IP [--aead] [--spin]');
  process.exit(2);
}
const [vip, prefix] = a.vip.split('/');
const peer = a.peer;
const tap = TapDevice.open({ name: a.tap, mtu: DEFAULT_VPN_MTU, offload: true });
tap.setIPv4(vip!, Number(prefix));
tap.up();
const sock = dgram.createSocket('udp4');
let sendNonce = 0;
let nextId = 0;

function send(frame: Uint8Array, flags: number): void {
  let body = frame;
  if (a.aead) {
    body = new Uint8Array(8 + frame.length + TAG_LEN);
    new DataView(body.buffer).setFloat64(0, sendNonce);
    aeadEncryptInto(KEY, sendNonce++, AD, frame, body, 8);
  }
  const id = nextId++ & 0xffff, n = Math.ceil(body.length / CHUNK);
  for (let k = 0; k < n; k++) {
    const h = Buffer.allocUnsafe(HEADER);
    h[0] = flags; h.writeUInt16BE(id, 1); h[3] = k; h[4] = n; h[5] = 0; h[6] = 0; h[7] = 0;
    sock.send([h, body.subarray(k * CHUNK, (k + 1) * CHUNK)], PORT, peer);
  }
}

function deliver(body: Uint8Array, flags: number): void {
  let frame = body;
  if (a.aead) {
    try {
      frame = aeadDecrypt(KEY, new DataView(body.buffer, body.byteOffset).getFloat64(0), AD, body.subarray(8));
    } catch { return; }
  }
  tap.writeBatch([frame], flags === 1);
}

let cur = -1, parts: Buffer[] = [], got = 0;
function onDatagram(m: Buffer): void {
  if (m.length <= HEADER) return;
  const id = m.readUInt16BE(1), k = m[3]!, n = m[4]!;
  if (n === 1) { deliver(m.subarray(HEADER), m[0]!); return; }
  if (id !== cur) { cur = id; parts = new Array<Buffer>(n); got = 0; }
  if (k < n && !parts[k]) { parts[k] = m.subarray(HEADER); got++; }
  if (got === n) { cur = -1; deliver(Buffer.concat(parts), m[0]!); }
}

sock.bind(PORT, a.local, () => {
  sock.setRecvBufferSize(4 << 20);
  sock.setSendBufferSize(4 << 20);
  sock.on('message', onDatagram);
  tap.start((frames, offloaded) => { for (let i = 0; i < frames.length; i++) send(frames[i]!, offloaded?.[i] ?? 0); });
  console.log(`floor relay ${a.tap} ${a.vip} → ${peer}${a.aead ? ` (AEAD, ${defaultAead.name})` : ''}${a.spin ? ' (spinning)' : ''}`);
});
if (a.spin) {
  const spin = (): void => { setImmediate(spin); };
  spin();
}
const stop = () => { tap.close(); sock.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
