// Valid-message generators and decoder targets for the overlay wire formats: value, link, AH, RPC, NodeInfo.
import { Address } from '../../src/address/address.js';
import { CODES, decodeLink, encodeLink, LinkError, LINK_VERSION, PTYPE_LINK, PTYPE_ROUTED, type LinkMessage } from '../../src/connection/link-wire.js';
import { decodeNodeInfo, encodeNodeInfo, MAX_NODEINFO_TAS, type NodeInfo } from '../../src/connection/node-info.js';
import { AH_HEADER, AH_VERSION, decodeAh, encodeAh, encodeAhInRoom, Mode, type AhHeader } from '../../src/routing/ah-wire.js';
import { decodeRpc, encodeRpc, RpcCode, RpcKind, RPC_VERSION, type RpcMessage } from '../../src/rpc/rpc-wire.js';
import { TransportAddress, type TaKind } from '../../src/transport/ta.js';
import { decodeValue, encodeValue, TAG_BYTES, TAG_LIST, TAG_MAP, TAG_STRING, type Value } from '../../src/wire/value.js';
import { cat, sameBytes, u8 } from './bytes.js';
import type { Rng } from './rng.js';
import { isWireError, type DecoderTarget } from './target.js';

const LINK_ERRORS = [
  LinkError.Ok, LinkError.Realm, LinkError.ConnectToSelf, LinkError.InProgress, LinkError.AlreadyConnected, LinkError.TargetMismatch, LinkError.Disconnecting,
];
const AH_MODES = [Mode.Closest, Mode.Greedy, Mode.Exact, Mode.ClosestFinal];
const RPC_KINDS = [RpcKind.Request, RpcKind.Reply, RpcKind.Error];
const RPC_CODES = [RpcCode.NotAList, RpcCode.NoHandler, RpcCode.BadParams, RpcCode.Remote, RpcCode.Threw, RpcCode.Timeout];

function randString(r: Rng, max = 20): string {
  const n = r.int(max + 1);
  let s = '';
  for (let i = 0; i < n; i++) {
    const k = r.int(10);
    if (k < 6) s += String.fromCharCode(0x20 + r.int(0x5f));
    else if (k < 8) s += String.fromCharCode(0xa0 + r.int(0x700));
    else if (k === 8) s += String.fromCodePoint(0x1f300 + r.int(0x300));
    else s += r.pick(['é', '日本', '\u0000', 'a\u0301', '\uFEFF', '𝄞', '\n']);
  }
  return s;
}

function randValue(r: Rng, depth = 0): Value {
  const k = r.int(depth > 3 ? 6 : 8);
  switch (k) {
    case 0: return null;
    case 1: return r.int(2) === 0;
    case 2: return r.int(4) === 0 ? r.pick([0, -1, 0x7fffffff, -0x80000000]) : (r.int(0x100000000) | 0);
    case 3: { const dv = new DataView(r.bytes(8).buffer); const x = dv.getFloat64(0); return r.int(4) === 0 ? r.pick([NaN, Infinity, -Infinity, 1.5, 2 ** 53]) : x; }
    case 4: return randString(r);
    case 5: return r.bytes(r.int(40));
    case 6: return Array.from({ length: r.int(5) }, () => randValue(r, depth + 1));
    default: {
      const o: { [k: string]: Value } = {};
      for (let i = r.int(5); i > 0; i--) o[randString(r, 8)] = randValue(r, depth + 1);
      return o;
    }
  }
}

const randAddress = (r: Rng): Address => Address.fromBytes(r.bytes(20));
function randTA(r: Rng): TransportAddress {
  const kind = r.pick<TaKind>(['udp', 'tcp', 'function']);
  const host = r.pick([
    () => `${r.int(256)}.${r.int(256)}.${r.int(256)}.${r.int(256)}`, () => 'localhost', () => '::1',
    () => `fe80::${r.int(0xffff).toString(16)}`, () => `node${r.int(1000)}.example.org`,
  ])();
  return new TransportAddress(kind, host, 1 + r.int(65535));
}
const randNodeInfo = (r: Rng): NodeInfo => ({ address: randAddress(r), tas: Array.from({ length: r.int(MAX_NODEINFO_TAS + 1) }, () => randTA(r)) });
const randNb = (r: Rng): NodeInfo[] => Array.from({ length: r.int(5) }, () => randNodeInfo(r));
const randInt = (r: Rng): number => r.pick([() => r.int(0x7fffffff), () => r.int(0x100000000) | 0, () => Number.MAX_SAFE_INTEGER])();
const shortStr = (r: Rng): string => randString(r, 30);

function randLink(r: Rng): LinkMessage {
  switch (r.int(CODES.length)) {
    case 0: return {
      t: 'start', id: randInt(r), realm: randString(r), type: shortStr(r), local: randNodeInfo(r),
      target: r.int(2) ? randAddress(r) : undefined, remoteTA: r.int(2) ? randTA(r) : undefined, token: shortStr(r),
    };
    case 1: return { t: 'reply', id: randInt(r), code: r.pick(LINK_ERRORS), local: randNodeInfo(r), remoteTA: r.int(2) ? randTA(r) : undefined, neighbors: randNb(r) };
    case 2: return { t: 'close', reason: shortStr(r), neighbors: randNb(r) };
    case 3: return { t: 'ping', nonce: randInt(r) };
    case 4: return { t: 'pong', nonce: randInt(r) };
    case 5: return { t: 'status', neighbors: randNb(r), tas: r.int(2) ? Array.from({ length: r.int(MAX_NODEINFO_TAS + 1) }, () => randTA(r)) : undefined };
    case 6: return { t: 'statusreq' };
    case 7: return { t: 'settype', type: shortStr(r) };
    default: return { t: 'punch', dial: r.int(2) === 0 };
  }
}

function randAh(r: Rng): [AhHeader, Uint8Array] {
  return [{
    mode: r.pick(AH_MODES), flags: r.int(256), hops: r.int(0x10000), ttl: r.int(0x10000),
    src: randAddress(r), dst: randAddress(r), ptype: r.int(256),
  }, r.bytes(r.int(40))];
}

function randRpc(r: Rng): RpcMessage {
  const id = r.int(0x100000000);
  switch (r.int(3)) {
    case 0: return { kind: RpcKind.Request, id, method: r.pick(['sys:link.Ping', 'Information.Info', 'sys:ctm.ConnectTo', randString(r, 40)]), args: Array.from({ length: r.int(5) }, () => randValue(r, 1)) } as RpcMessage;
    case 1: return { kind: RpcKind.Reply, id, result: randValue(r) } as RpcMessage;
    default: return { kind: RpcKind.Error, id, code: r.pick([...RPC_CODES, randInt(r) | 0]), message: randString(r) } as RpcMessage;
  }
}

export function overlayTargets(r: Rng): DecoderTarget[] {
  const N = 400;
  const valuePool = Array.from({ length: N }, () => encodeValue(randValue(r)));
  const linkPool = Array.from({ length: N }, () => encodeLink(randLink(r)));
  const ahPool = Array.from({ length: N }, () => encodeAh(...randAh(r)));
  const rpcPool = Array.from({ length: N }, () => encodeRpc(randRpc(r)));
  const niPool = Array.from({ length: N }, () => encodeValue(encodeNodeInfo(randNodeInfo(r))));
  const u32 = (n: number) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n >>> 0); return b; };
  return [
    {
      name: 'decodeValue', decode: (b) => decodeValue(b), pool: valuePool, prefixes: [u8(TAG_LIST), u8(TAG_MAP), u8(TAG_STRING), u8(TAG_BYTES)], bodyStart: 0, allowed: isWireError,
      check: (v) => { decodeValue(encodeValue(v as Value)); },
    },
    {
      name: 'decodeLink', decode: decodeLink, pool: linkPool, prefixes: CODES.map((_, k) => u8(PTYPE_LINK, LINK_VERSION, k)), bodyStart: 3,
      allowed: isWireError, check: (m) => { decodeLink(encodeLink(m as LinkMessage)); },
    },
    {
      name: 'decodeAh', decode: decodeAh, pool: ahPool, prefixes: AH_MODES.map((m) => u8(PTYPE_ROUTED, AH_VERSION, m)), bodyStart: null, allowed: isWireError,
      check: (h, b) => {
        if (!sameBytes(encodeAh(h as AhHeader, b.subarray(AH_HEADER)), b)) throw new Error('re-encoding differs');
        // The in-place encoder (IpopConfig/FastPath) must give the same bytes.
        const lent = new Uint8Array(b.length + 16);
        lent.set(b.subarray(AH_HEADER), AH_HEADER);
        const inRoom = encodeAhInRoom(h as AhHeader, lent.subarray(AH_HEADER, b.length), { head: AH_HEADER, tail: 16 });
        if (!inRoom || !sameBytes(inRoom, b)) throw new Error('in-place re-encoding differs');
      },
    },
    {
      name: 'decodeRpc', decode: decodeRpc, pool: rpcPool, prefixes: RPC_KINDS.map((k) => cat(u8(RPC_VERSION, k), u32(k * 77))), bodyStart: 6, allowed: isWireError,
      check: (m) => { const x = m as RpcMessage; const y = decodeRpc(encodeRpc(x)); if (y.kind !== x.kind || y.id !== x.id) throw new Error('re-encoding differs'); },
    },
    {
      name: 'decodeNodeInfo', decode: (b) => decodeNodeInfo(decodeValue(b)), pool: niPool,
      prefixes: [cat(u8(TAG_MAP), u32(2), u32(1), u8(0x61), u8(TAG_BYTES), u32(20))], bodyStart: 0, allowed: isWireError,
      check: (n) => {
        const x = n as NodeInfo;
        if (x.tas.length > MAX_NODEINFO_TAS) throw new Error('too many TAs');
        const y = decodeNodeInfo(encodeNodeInfo(x));
        if (!y.address.equals(x.address) || y.tas.map(String).join() !== x.tas.map(String).join()) throw new Error('re-encoding differs');
      },
    },
  ];
}
