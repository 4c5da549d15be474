// The native flow table's receive parser (native/flow.cc, through src/edge/native-flows.ts)
// under the same random and mutated datagrams as the TypeScript decoders, and checked against
// them: each input goes to the native flow and to a TypeScript Session with the same keys and
// replay state, and they must agree on every datagram: both refuse it, or both open it and the
// flow's verdict is what the TypeScript path (decodeAh, FramePath.register, ipop-node.ts
// deliver) would do with the plaintext. The pool is genuine datagrams whose plaintexts are
// themselves mutated routing headers and frames, so the checks after the seal are reached too.
import { Address } from '../../src/address/address.js';
import { FlowVerdict, NativeFlowTable, nativeFlowsUnavailableReason } from '../../src/edge/native-flows.js';
import { T_DATA } from '../../src/edge/secure-wire.js';
import { newSessionStats, Session } from '../../src/edge/session.js';
import { decodeAh, encodeAh, Mode, Payload } from '../../src/routing/ah-wire.js';
import { realClock } from '../../src/util/clock.js';
import { ipv4Dst, ipv4Src, isIpv4Frame } from '../../src/vpn/frames.js';
import { WireError } from '../../src/wire/value.js';
import { cat, hex, u8 } from './bytes.js';
import { mutate } from './mutate.js';
import type { Rng } from './rng.js';
import type { DecoderTarget } from './target.js';

const EDGE = 0x0a0b0c0d, PEER_EDGE = 0x01020304, LOCAL_IP = 0x0a920001, PEER_IP = 0x0a920002;
const udp = (receiver: number) => u8(1, 0, PEER_EDGE >>> 24, (PEER_EDGE >>> 16) & 0xff, (PEER_EDGE >>> 8) & 0xff, PEER_EDGE & 0xff,
  receiver >>> 24, (receiver >>> 16) & 0xff, (receiver >>> 8) & 0xff, receiver & 0xff);

function frame(r: Rng, src: number, dst: number): Uint8Array {
  const f = r.bytes(14 + 20 + r.pick([0, 8, 64, 600]));
  f[12] = 0x08; f[13] = 0; f[14] = 0x45;
  const total = f.length - 14;
  f[16] = total >> 8; f[17] = total & 0xff;
  const v = new DataView(f.buffer);
  v.setUint32(26, src); v.setUint32(30, dst);
  return f;
}

/** What the TypeScript path does with an authenticated plaintext: a frame for the TAP, or not. */
function tsVerdict(p: Uint8Array, self: Address, peer: Address): FlowVerdict {
  let h;
  try { h = decodeAh(p); } catch (e) { if (e instanceof WireError) return FlowVerdict.Plaintext; throw e; }
  const f = p.subarray(49);
  const frameForUs = h.mode === Mode.Exact && h.flags === 0 && h.ptype === Payload.Ip && h.src.equals(peer) && h.dst.equals(self) && p[1] === 1 &&
    isIpv4Frame(f) && ipv4Src(f) === PEER_IP && ipv4Dst(f) === LOCAL_IP;
  return frameForUs ? FlowVerdict.Frame : FlowVerdict.Plaintext;
}

/** The target; throws (failing the run) where the addon has no flow table. */
export function nativeFlowTargets(r: Rng): DecoderTarget[] {
  const why = nativeFlowsUnavailableReason();
  if (why) throw new Error(`native flows: ${why}`);
  const k1 = r.bytes(32), k2 = r.bytes(32), self = Address.fromBytes(r.bytes(20)), peer = Address.fromBytes(r.bytes(20));
  const sender = new Session({ send: k2, recv: k1 }, { clock: realClock, rekeyAfterPackets: 50 }, newSessionStats());
  const receiver = new Session({ send: k1, recv: k2 }, { clock: realClock }, newSessionStats());
  const table = new NativeFlowTable();
  table.install({
    localEdgeId: EDGE, remoteEdgeId: PEER_EDGE, sendKey: k1, recvKey: k2, sendEpoch: 0, recvEpoch: 0, sendCounter: 0, sendEpochStart: realClock.now(),
    rekeyPackets: 2 ** 20, rekeyMs: 120_000, graceMs: 10_000, self: self.bytes, peer: peer.bytes, ttl: 9, localIp: LOCAL_IP, peerIp: PEER_IP,
    tapMac: r.bytes(6), gatewayMac: r.bytes(6),
  });
  const pool: Uint8Array[] = [];
  for (let i = 0; i < 300; i++) {
    const src = r.chance(0.8) ? PEER_IP : r.int(2 ** 32), dst = r.chance(0.8) ? LOCAL_IP : r.int(2 ** 32);
    const good = encodeAh({ mode: Mode.Exact, flags: 0, hops: 1, ttl: 9, src: r.chance(0.9) ? peer : self, dst: self, ptype: r.chance(0.8) ? Payload.Ip : Payload.Rpc }, frame(r, src, dst));
    pool.push(cat(udp(EDGE), sender.seal(T_DATA, r.chance(0.5) ? good : mutate(r, good, null))));
  }
  const prefixes = [udp(EDGE), cat(udp(EDGE), u8(T_DATA, 0, 0, 0, 0, 0)), udp(EDGE + 1), u8(1, 3)];
  return [{
    name: 'NativeFlow.open',
    decode: (b) => {
      const ts = b.length >= 10 && b[0] === 1 && b[1] === 0 && new DataView(b.buffer, b.byteOffset).getUint32(6) === EDGE && b[10] === T_DATA ? receiver.open(b.subarray(10)) : null;
      const native = table.open(new Uint8Array(b), realClock.now());
      return { ts, native, plaintext: ts?.plaintext };
    },
    pool, prefixes, bodyStart: null, allowed: () => false,
    rejected: (v) => { const { ts, native } = v as { ts: unknown; native: { verdict: FlowVerdict } }; return ts === null && (native.verdict === FlowVerdict.Drop || native.verdict === FlowVerdict.NotMine); },
    check: (v) => {
      const { ts, native } = v as { ts: { plaintext: Uint8Array } | null; native: { verdict: FlowVerdict; data?: Uint8Array } };
      if (ts === null) throw new Error(`the native flow opened (verdict ${native.verdict}) what Session.open refused`);
      const want = tsVerdict(ts.plaintext, self, peer);
      if (native.verdict !== want) throw new Error(`Session.open opened it; the native verdict ${native.verdict}, the TypeScript path's ${want}`);
      const got = native.data!;
      const same = want === FlowVerdict.Plaintext ? hex(got) === hex(ts.plaintext) : hex(got.subarray(12)) === hex(ts.plaintext.subarray(49 + 12));
      if (!same) throw new Error('the native flow\'s bytes differ from the TypeScript plaintext');
    },
  }];
}
