// Fuzz targets for the VPN's offload header (with software TSO on what decodes) and the UDP
// transport's fragment requests and reassembly, for `npm run fuzz` (bench/fuzz/).
import {
  decodeRequest, FragmentBudget, fragmentCount, FRAGMENT_HEADER, FRAGMENT_PAYLOAD, Reassembly, REQUEST_FIXED, writeFragmentFields,
} from '../src/transport/udp-fragments.js';
import { T_FRAGMENT, T_REQUEST, UDP_HEADER, UDP_WIRE_VERSION } from '../src/transport/udp.js';
import { decodeOffloadHeader, encodeOffloadHeader, F_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, OFFLOAD_HEADER, OffloadError, segment } from '../src/vpn/offload.js';
import type { Rng } from './fuzz/rng.js';
import type { DecoderTarget } from './fuzz/target.js';

/** Offload header + an Ethernet/IPv4-or-IPv6/TCP super-packet, as a sender's VPN sends it. */
function superPacket(r: Rng): Uint8Array {
  const v6 = r.chance(0.5), ip = v6 ? 40 : 20, tcp = 14 + ip, payload = r.int(6000);
  const f = new Uint8Array(OFFLOAD_HEADER + tcp + 20 + payload);
  const e = OFFLOAD_HEADER;
  f.set(r.bytes(12), e);
  f[e + 12] = v6 ? 0x86 : 0x08; f[e + 13] = v6 ? 0xdd : 0x00;
  const dv = new DataView(f.buffer);
  if (v6) { f[e + 14] = 0x60; dv.setUint16(e + 18, 20 + payload); f[e + 20] = 6; f[e + 21] = 64; f.set(r.bytes(32), e + 22); }
  else { f[e + 14] = 0x45; dv.setUint16(e + 16, 40 + payload); f[e + 22] = 64; f[e + 23] = 6; f.set(r.bytes(8), e + 26); }
  f.set(r.bytes(12), e + tcp); f[e + tcp + 12] = 0x50; f[e + tcp + 13] = 0x18;
  f.set(r.bytes(payload), e + tcp + 20);
  encodeOffloadHeader({ flags: F_NEEDS_CSUM, gsoType: v6 ? GSO_TCPV6 : GSO_TCPV4, hdrLen: tcp + 20, gsoSize: 1 + r.int(1500), csumStart: tcp, csumOffset: 16 }, f);
  return f;
}

/** A fragment request datagram (header included) for a message of 2..64 fragments. */
function request(r: Rng): Uint8Array {
  const count = 2 + r.int(63);
  const d = new Uint8Array(REQUEST_FIXED + Math.ceil(count / 8));
  d[0] = UDP_WIRE_VERSION; d[1] = T_REQUEST;
  new DataView(d.buffer).setUint32(UDP_HEADER, r.int(0xffffffff));
  new DataView(d.buffer).setUint16(UDP_HEADER + 4, count);
  d.set(r.bytes(d.length - REQUEST_FIXED), REQUEST_FIXED);
  return d;
}

export function vpnTargets(r: Rng): DecoderTarget[] {
  const N = 200;
  const supers = Array.from({ length: N }, () => superPacket(r));
  const requests = Array.from({ length: N }, () => request(r));
  const fragments = Array.from({ length: N }, () => {
    const msg = r.bytes(2000 + r.int(8000));
    const count = fragmentCount(msg.length), i = r.int(count);
    const head = Buffer.alloc(FRAGMENT_HEADER);
    head[0] = UDP_WIRE_VERSION; head[1] = T_FRAGMENT; head.writeUInt32BE(7, 2); head.writeUInt32BE(9, 6);
    writeFragmentFields(head, r.int(1000), i, count);
    return Uint8Array.from([...head, ...msg.subarray(i * FRAGMENT_PAYLOAD, (i + 1) * FRAGMENT_PAYLOAD)]);
  });
  // One reassembly for the whole run: whatever arrives, it must neither throw nor outgrow its budget.
  const budget = new FragmentBudget(4 << 20);
  const re = new Reassembly(budget, () => {});
  let clock = 0;
  return [
    {
      name: 'decodeOffloadHeader', pool: supers, prefixes: [Uint8Array.of(GSO_TCPV4, F_NEEDS_CSUM), Uint8Array.of(GSO_TCPV6, F_NEEDS_CSUM), Uint8Array.of(0, 0)],
      bodyStart: null, allowed: (e) => e instanceof OffloadError,
      decode: (b) => {
        const m = decodeOffloadHeader(b, 0, b.length - OFFLOAD_HEADER);
        // What a receiver without offload does with it next.
        return segment(m, b.subarray(OFFLOAD_HEADER));
      },
      check: (segs) => { for (const s of segs as Uint8Array[]) if (s.length > 65535 + 14) throw new Error(`segment of ${s.length} bytes`); },
    },
    {
      name: 'decodeRequest', pool: requests, prefixes: [Uint8Array.of(UDP_WIRE_VERSION, T_REQUEST)], bodyStart: null, allowed: () => false,
      decode: (b) => decodeRequest(Buffer.from(b)), rejected: (v) => v === null,
      check: (v) => { const q = v as { count: number; missing: number[] }; if (q.missing.some((i) => i >= q.count)) throw new Error('index beyond count'); },
    },
    {
      name: 'Reassembly.add', pool: fragments, prefixes: [Uint8Array.of(UDP_WIRE_VERSION, T_FRAGMENT)], bodyStart: null, allowed: () => false,
      decode: (b) => {
        const d = Buffer.from(b);
        if (d.length < FRAGMENT_HEADER) return 'short';
        const v = re.add(d, clock += 1);
        if (clock % 50 === 0) re.requests(clock);
        if (budget.used > budget.limit) throw new Error(`budget ${budget.used} over ${budget.limit}`);
        return v;
      },
    },
  ];
}
