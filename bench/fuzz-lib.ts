// Shared fuzz harness for `npm run fuzz` (bench/fuzz.ts) and test/secure-fuzz.test.ts.
//
// Two kinds of targets:
//  * decoders: random and mutated valid encodings go through every wire decoder; each call
//    must return or throw the module's typed error (WireError; HandshakeError for the Noise
//    state machine; Session.open must not throw at all). Decoded results are re-encoded
//    and compared where the format is canonical, and anything that authenticates must be
//    byte-identical to a genuine packet.
//  * the receive path: garbage and mutated real handshake/transport packets are injected
//    into a SecureEdgeListener (the "victim") over the in-memory transport, in every state
//    (unbound inner edge, responder waiting for message 3, initiator waiting for message 2,
//    established), plus insiders that hold the group key and send mutated identity
//    payloads. Nothing may escape (no uncaught exception or rejection, no handler error,
//    no "receive error"), no forged or replayed packet may be delivered, a batch that
//    contains no packet able to end a handshake must not end it, and the listener must
//    still complete real handshakes and exchange data at the end.
//
// Everything random comes from one seeded PRNG (mulberry32); only the X25519 ephemerals of
// the listeners' own handshakes come from the system RNG.
import { Address } from '../src/address/address.js';
import { decodeLink, encodeLink, LINK_VERSION, PTYPE_LINK, PTYPE_ROUTED, type LinkMessage } from '../src/connection/link-wire.js';
import { decodeNodeInfo, encodeNodeInfo, MAX_NODEINFO_TAS, type NodeInfo } from '../src/connection/node-info.js';
import { HandshakeError, HandshakeState } from '../src/edge/handshake.js';
import { Identity, verifySignature } from '../src/edge/identity.js';
import { aeadEncrypt, x25519FromPrivate, type DhKeyPair } from '../src/edge/primitives.js';
import { HandshakeFailure } from '../src/edge/secure-types.js';
import { SecureEdgeListener, securePrologue } from '../src/edge/secure-listener.js';
import type { SecureEdge } from '../src/edge/secure-edge.js';
import {
  ABORT_IDENTITY, ABORT_PROTOCOL, MAX_CERTIFICATE, SECURE_WIRE_VERSION, T_ABORT, T_CONFIRM, T_DATA, T_FINISH, T_HELLO, T_REPLY,
  T_RETRY, abortHeader, decodeDataHeader, decodeHandshake, decodeIdentity, encodeAbort, encodeDataHeader, encodeHello,
  encodeIdentity, encodeNoise, encodeRetry, type HandshakePacket,
} from '../src/edge/secure-wire.js';
import { Session, newSessionStats } from '../src/edge/session.js';
import { decodeAh, encodeAh, type AhHeader } from '../src/routing/ah-wire.js';
import { decodeRpc, encodeRpc, type RpcMessage } from '../src/rpc/rpc-wire.js';
import type { Edge } from '../src/transport/edge.js';
import { MemoryNetwork, type MemoryEdgeListener } from '../src/transport/memory.js';
import { TransportAddress, type TaKind } from '../src/transport/ta.js';
import { realClock } from '../src/util/clock.js';
import { createLogger } from '../src/util/log.js';
import { seededRandom } from '../src/util/random.js';
import { decodeValue, encodeValue, WireError, type Value } from '../src/wire/value.js';
import { vpnTargets } from './fuzz-vpn.js';

// ---------------------------------------------------------------------------------------
// PRNG, byte helpers, mutation

export interface Rng {
  next(): number;
  int(n: number): number;
  bytes(n: number): Uint8Array;
  pick<T>(xs: readonly T[]): T;
  chance(p: number): boolean;
}

/** mulberry32: small, fast, reproducible. */
export function prng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  return {
    next,
    int,
    bytes(n) { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = int(256); return b; },
    pick: (xs) => xs[int(xs.length)]!,
    chance: (p) => next() < p,
  };
}

/** Derives an independent seed for a named sub-stream. */
export function subSeed(seed: number, name: string): number {
  let h = seed >>> 0 ^ 0x9e3779b9;
  for (const c of name) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h >>> 0;
}

const cat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
};
const u8 = (...xs: number[]): Uint8Array => Uint8Array.from(xs);
/** A real copy (Buffer#slice would return a view of the same memory). */
const copy = (b: Uint8Array): Uint8Array => new Uint8Array(b);
export const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && Buffer.compare(a, b) === 0;
const EMPTY = new Uint8Array(0);
const utf8 = new TextEncoder();

/** Offsets of every u32 length/count field of a value encoding starting at `start` (best effort). */
function lengthFields(b: Uint8Array, start: number): number[] {
  const out: number[] = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let pos = start;
  const walk = (depth: number): void => {
    if (pos >= b.length || depth > 40) throw new Error('end');
    const tag = b[pos++]!;
    switch (tag) {
      case 0: case 1: case 2: return;
      case 3: pos += 4; return;
      case 4: pos += 8; return;
      case 5: case 6: out.push(pos); pos += 4 + dv.getUint32(pos); return;
      case 7: { out.push(pos); const n = dv.getUint32(pos); pos += 4; for (let i = 0; i < n; i++) walk(depth + 1); return; }
      case 8: {
        out.push(pos); const n = dv.getUint32(pos); pos += 4;
        for (let i = 0; i < n; i++) { out.push(pos); pos += 4 + dv.getUint32(pos); walk(depth + 1); }
        return;
      }
      default: throw new Error('tag');
    }
  };
  try { walk(0); } catch { /* a partial list is fine */ }
  return out;
}

const HUGE = [0xffffffff, 0xfffffffe, 0x80000000, 0x7fffffff, 0x10000, 0x10001, 0x1000000, 0x2000, 0x2001];
const INTERESTING = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x10, 0x11, 0x1f, 0x20, 0x7f, 0x80, 0xfe, 0xff];

/**
 * One to three random mutations of a valid encoding: bit flips, truncation, insertion,
 * deletion, a length field (or any u32/u16) set to a huge or off-by-some value, an
 * interesting byte, a duplicated slice.
 */
export function mutate(r: Rng, src: Uint8Array, bodyStart: number | null): Uint8Array {
  let b: Uint8Array = copy(src);
  const rounds = 1 + r.int(3);
  for (let k = 0; k < rounds; k++) {
    const op = r.int(10);
    if (op <= 1 && b.length > 0) {
      const flips = 1 + r.int(4);
      for (let i = 0; i < flips; i++) b[r.int(b.length)]! ^= 1 << r.int(8);
    } else if (op === 2) {
      b = b.slice(0, r.int(b.length + 1));
    } else if (op === 3) {
      const at = r.int(b.length + 1);
      b = cat(b.subarray(0, at), r.bytes(1 + r.int(8)), b.subarray(at));
    } else if (op === 4 && b.length > 0) {
      const at = r.int(b.length);
      b = cat(b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + r.int(8))));
    } else if (op <= 6) {
      const fields = bodyStart === null ? [] : lengthFields(b, bodyStart);
      const at = fields.length > 0 ? r.pick(fields) : r.int(Math.max(1, b.length - 3));
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      if (r.int(3) === 0 && at + 2 <= b.length) {
        dv.setUint16(at, r.int(2) === 0 ? r.pick([0xffff, 0x2000, 0x2001, 0x1fff, 0x8000, 0]) : (dv.getUint16(at) + r.int(9) - 4) & 0xffff);
      } else if (at + 4 <= b.length) {
        dv.setUint32(at, r.int(2) === 0 ? r.pick(HUGE) : (dv.getUint32(at) + r.int(9) - 4) >>> 0);
      }
    } else if (op === 7 && b.length > 0) {
      b[r.int(Math.min(b.length, r.int(2) === 0 ? 4 : b.length))] = r.pick(INTERESTING);
    } else if (op === 8 && b.length > 1) {
      const at = r.int(b.length), len = 1 + r.int(Math.min(16, b.length - at));
      b = cat(b.subarray(0, at + len), b.subarray(at, at + len), b.subarray(at + len));
    } else if (b.length > 0) {
      // Splice: keep a valid header, replace the tail with random bytes.
      const at = r.int(b.length);
      b = cat(b.subarray(0, at), r.bytes(r.int(b.length - at + 8)));
    }
  }
  return b;
}

/** Random inputs: mostly short; some behind a valid header; some from a value-tag alphabet. */
function randomInput(r: Rng, prefixes: readonly Uint8Array[]): Uint8Array {
  const len = r.next() < 0.9 ? r.int(64) : r.int(2048);
  const body = r.bytes(len);
  const mode = r.int(3);
  if (mode === 0 && prefixes.length > 0) return cat(r.pick(prefixes), body);
  if (mode === 1) {
    for (let j = 0; j < body.length; j++) if (r.int(2) === 0) body[j] = r.int(10);
    return prefixes.length > 0 && r.int(2) === 0 ? cat(r.pick(prefixes), body) : body;
  }
  return body;
}

// ---------------------------------------------------------------------------------------
// Valid-message generators for the overlay wire formats

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
  switch (r.int(8)) {
    case 0: return {
      t: 'start', id: randInt(r), realm: randString(r), type: shortStr(r), local: randNodeInfo(r),
      target: r.int(2) ? randAddress(r) : undefined, remoteTA: r.int(2) ? randTA(r) : undefined, token: shortStr(r),
    };
    case 1: return { t: 'reply', id: randInt(r), code: r.pick([0, 3, 16, 17, 18, 19, 20]), local: randNodeInfo(r), remoteTA: r.int(2) ? randTA(r) : undefined, neighbors: randNb(r) };
    case 2: return { t: 'close', reason: shortStr(r), neighbors: randNb(r) };
    case 3: return { t: 'ping', nonce: randInt(r) };
    case 4: return { t: 'pong', nonce: randInt(r) };
    case 5: return { t: 'status', neighbors: randNb(r) };
    case 6: return { t: 'statusreq' };
    default: return { t: 'settype', type: shortStr(r) };
  }
}

function randAh(r: Rng): [AhHeader, Uint8Array] {
  return [{
    mode: r.pick([0, 3, 5, 6]) as AhHeader['mode'], flags: r.int(256), hops: r.int(0x10000), ttl: r.int(0x10000),
    src: randAddress(r), dst: randAddress(r), ptype: r.int(256),
  }, r.bytes(r.int(40))];
}

function randRpc(r: Rng): RpcMessage {
  const id = r.int(0x100000000);
  switch (r.int(3)) {
    case 0: return { kind: 1, id, method: r.pick(['sys:link.Ping', 'Information.Info', 'sys:ctm.ConnectTo', randString(r, 40)]), args: Array.from({ length: r.int(5) }, () => randValue(r, 1)) } as RpcMessage;
    case 1: return { kind: 2, id, result: randValue(r) } as RpcMessage;
    default: return { kind: 3, id, code: r.pick([-32600, -32601, -32602, -32603, -32608, -32000, randInt(r) | 0]), message: randString(r) } as RpcMessage;
  }
}

// ---------------------------------------------------------------------------------------
// Targets

export interface DecoderTarget {
  name: string;
  decode(b: Uint8Array): unknown;
  /** Valid encodings to mutate. */
  pool: Uint8Array[];
  /** Valid headers to put in front of random bytes. */
  prefixes: Uint8Array[];
  /** Where value-encoded length fields start, or null. */
  bodyStart: number | null;
  /** The documented error type(s); anything else thrown is a failure. */
  allowed(e: unknown): boolean;
  /** A documented non-throwing rejection (Session.open returns null); counted with typed errors. */
  rejected?(v: unknown): boolean;
  /** Extra check on a successful decode; throw to report a failure. */
  check?(v: unknown, b: Uint8Array): void;
}

export interface TargetResult {
  name: string;
  calls: number;
  returned: number;
  typedErrors: number;
  failures: number;
  ms: number;
}

const isWireError = (e: unknown): boolean => e instanceof WireError;
const MAX_REPORTED = 10;

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}${e.stack ? ` @ ${e.stack.split('\n').slice(1, 3).map((l) => l.trim()).join(' | ')}` : ''}`;
  return `non-Error ${typeof e}: ${String(e)}`;
}

/** Runs n inputs (half random, half mutated) through one target. */
export function fuzzTarget(t: DecoderTarget, n: number, r: Rng, failures: string[]): TargetResult {
  const res: TargetResult = { name: t.name, calls: 0, returned: 0, typedErrors: 0, failures: 0, ms: 0 };
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    // Half random, half mutated; 1 in 32 of the latter is a genuine encoding, unchanged.
    const b = i % 2 === 0 || t.pool.length === 0 ? randomInput(r, t.prefixes) : r.int(32) === 0 ? copy(r.pick(t.pool)) : mutate(r, r.pick(t.pool), t.bodyStart);
    res.calls++;
    let v: unknown;
    try {
      v = t.decode(b);
    } catch (e) {
      if (t.allowed(e)) { res.typedErrors++; continue; }
      res.failures++;
      if (failures.length < MAX_REPORTED) failures.push(`${t.name}(${hex(b).slice(0, 160)}${b.length > 80 ? '…' : ''} [${b.length} bytes]) threw ${describe(e)}`);
      continue;
    }
    if (t.rejected?.(v)) { res.typedErrors++; continue; }
    res.returned++;
    if (t.check) {
      try { t.check(v, b); } catch (e) {
        res.failures++;
        if (failures.length < MAX_REPORTED) failures.push(`${t.name}(${hex(b).slice(0, 160)} [${b.length} bytes]) decoded, but: ${(e as Error).message}`);
      }
    }
  }
  res.ms = performance.now() - t0;
  return res;
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
      name: 'decodeValue', decode: (b) => decodeValue(b), pool: valuePool, prefixes: [u8(7), u8(8), u8(5), u8(6)], bodyStart: 0, allowed: isWireError,
      check: (v) => { decodeValue(encodeValue(v as Value)); },
    },
    {
      name: 'decodeLink', decode: decodeLink, pool: linkPool, prefixes: [0, 1, 2, 3, 4, 5, 6, 7].map((k) => u8(PTYPE_LINK, LINK_VERSION, k)), bodyStart: 3,
      allowed: isWireError, check: (m) => { decodeLink(encodeLink(m as LinkMessage)); },
    },
    {
      name: 'decodeAh', decode: decodeAh, pool: ahPool, prefixes: [0, 3, 5, 6].map((m) => u8(PTYPE_ROUTED, 1, m)), bodyStart: null, allowed: isWireError,
      check: (h, b) => { if (!sameBytes(encodeAh(h as AhHeader, b.subarray(49)), b)) throw new Error('re-encoding differs'); },
    },
    {
      name: 'decodeRpc', decode: decodeRpc, pool: rpcPool, prefixes: [1, 2, 3].map((k) => cat(u8(1, k), u32(k * 77))), bodyStart: 6, allowed: isWireError,
      check: (m) => { const x = m as RpcMessage; const y = decodeRpc(encodeRpc(x)); if (y.kind !== x.kind || y.id !== x.id) throw new Error('re-encoding differs'); },
    },
    {
      name: 'decodeNodeInfo', decode: (b) => decodeNodeInfo(decodeValue(b)), pool: niPool,
      prefixes: [cat(u8(8), u32(2), u32(1), u8(0x61), u8(6), u32(20))], bodyStart: 0, allowed: isWireError,
      check: (n) => {
        const x = n as NodeInfo;
        if (x.tas.length > MAX_NODEINFO_TAS) throw new Error('too many TAs');
        const y = decodeNodeInfo(encodeNodeInfo(x));
        if (!y.address.equals(x.address) || y.tas.map(String).join() !== x.tas.map(String).join()) throw new Error('re-encoding differs');
      },
    },
  ];
}

// ---------------------------------------------------------------------------------------
// Secure-edge material: real handshakes between fixed keys (deterministic from the seed)

// Must match SIG_LABEL in src/edge/secure-edge.ts (an insider has to sign like a real peer).
const SIG_LABEL = utf8.encode('brunet-ts secure-edge identity v1\0');
export const FUZZ_NAMESPACE = 'fuzz';

export function identityPayload(id: Identity, h: Uint8Array, certificate?: Uint8Array): Uint8Array {
  return encodeIdentity({ publicKey: id.publicKey, signature: id.sign(cat(SIG_LABEL, h, id.x25519.publicKey)), certificate });
}

const identityFrom = (r: Rng): Identity => Identity.fromPrivateKeys(r.bytes(32), r.bytes(32));

interface HsContext {
  idI: Identity; idR: Identity; eI: DhKeyPair; eR: DhKeyPair; certI?: Uint8Array; certR?: Uint8Array;
  m1: Uint8Array; m2: Uint8Array; m3: Uint8Array;
}

export interface SecureMaterial {
  psk: Uint8Array;
  prologue: Uint8Array;
  contexts: HsContext[];
  /** Every handshake packet type, valid. */
  handshakePool: Uint8Array[];
  /** DATA/CONFIRM packets over several epochs, sealed initiator → responder of context 0. */
  dataPool: Uint8Array[];
  identityPool: Uint8Array[];
  recvKeys: { send: Uint8Array; recv: Uint8Array };
}

export function secureMaterial(r: Rng): SecureMaterial {
  const psk = r.bytes(32);
  const prologue = securePrologue(FUZZ_NAMESPACE);
  const contexts: HsContext[] = [];
  const handshakePool: Uint8Array[] = [];
  const identityPool: Uint8Array[] = [];
  let dataPool: Uint8Array[] = [];
  let recvKeys: { send: Uint8Array; recv: Uint8Array } | undefined;
  const certs = [undefined, u8(1), r.bytes(40), r.bytes(700), r.bytes(MAX_CERTIFICATE), undefined];
  for (let k = 0; k < certs.length; k++) {
    const idI = identityFrom(r), idR = identityFrom(r);
    const eI = x25519FromPrivate(r.bytes(32)), eR = x25519FromPrivate(r.bytes(32));
    const certI = certs[k], certR = certs[(k + 2) % certs.length];
    const init = new HandshakeState({ initiator: true, prologue, s: idI.x25519, psk, e: eI });
    const resp = new HandshakeState({ initiator: false, prologue, s: idR.x25519, psk, e: eR });
    const m1 = copy(init.writeMessage(EMPTY));
    resp.readMessage(m1);
    let p2: Uint8Array = EMPTY, p3: Uint8Array = EMPTY;
    const m2 = copy(resp.writeMessage((h) => (p2 = identityPayload(idR, h, certR))));
    init.readMessage(m2);
    const abortKeys = init.abortKeys!;
    const m3 = copy(init.writeMessage((h) => (p3 = identityPayload(idI, h, certI))));
    resp.readMessage(m3);
    contexts.push({ idI, idR, eI, eR, certI, certR, m1, m2, m3 });
    identityPool.push(p2, p3);
    const cookie = r.bytes(16);
    const code = 1 + (k % 4);
    handshakePool.push(
      encodeHello(undefined, m1), encodeHello(cookie, m1), encodeRetry(cookie), encodeNoise(T_REPLY, m2), encodeNoise(T_FINISH, m3),
      encodeAbort(code, aeadEncrypt(abortKeys[k % 2]!, 0, abortHeader(code), utf8.encode(`refused ${'x'.repeat(k * 30)}`))),
    );
    const ki = init.split(), kr = resp.split();
    if (k === 0) {
      recvKeys = kr;
      // Rekey every 5 packets so the pool spans several epochs.
      const s = new Session(ki, { clock: realClock, rekeyAfterPackets: 5 }, newSessionStats());
      for (let i = 0; i < 24; i++) dataPool.push(s.seal(i % 7 === 3 ? T_CONFIRM : T_DATA, r.bytes(r.pick([0, 1, 16, 100, 1400]))));
    } else {
      const s = new Session(kr, { clock: realClock }, newSessionStats());
      dataPool.push(s.seal(T_DATA, r.bytes(r.int(64))), s.seal(T_CONFIRM, EMPTY));
    }
  }
  // Hand-made identity payloads of every certificate size class, signature garbage.
  for (const cl of [0, 1, 2, 255, 256, 4096, MAX_CERTIFICATE]) identityPool.push(encodeIdentity({ publicKey: r.bytes(32), signature: r.bytes(64), certificate: cl ? r.bytes(cl) : undefined }));
  // Headers with extreme counters.
  for (const counter of [0, 1, 0xffffffff, 0x100000000, 2 ** 52, Number.MAX_SAFE_INTEGER]) {
    dataPool.push(cat(encodeDataHeader({ type: T_DATA, epoch: r.int(256), counter }), r.bytes(16 + r.int(40))));
  }
  dataPool = dataPool.filter(Boolean);
  return { psk, prologue, contexts, handshakePool, dataPool, identityPool, recvKeys: recvKeys! };
}

function reencodeHandshake(m: HandshakePacket): Uint8Array {
  switch (m.type) {
    case T_HELLO: return encodeHello(m.cookie, m.noise);
    case T_RETRY: return encodeRetry(m.cookie);
    case T_REPLY: case T_FINISH: return encodeNoise(m.type, m.noise);
    default: return encodeAbort(m.code, m.sealed);
  }
}

export function secureTargets(r: Rng, mat: SecureMaterial): DecoderTarget[] {
  const hsPrefixes = [
    u8(T_HELLO, SECURE_WIRE_VERSION, 0), u8(T_HELLO, SECURE_WIRE_VERSION, 16), u8(T_RETRY, SECURE_WIRE_VERSION), u8(T_REPLY, SECURE_WIRE_VERSION),
    u8(T_FINISH, SECURE_WIRE_VERSION), u8(T_ABORT, SECURE_WIRE_VERSION, 1), u8(T_ABORT, SECURE_WIRE_VERSION, 9), u8(T_HELLO, 2, 0),
  ];
  const dataPrefixes = [u8(T_DATA, 0, 0, 0, 0, 0), u8(T_CONFIRM, 1, 0, 0x1f, 0xff, 0xff), u8(T_DATA, 0xff, 0, 0x20, 0, 0), u8(T_DATA, 0)];
  const genuine = new Set(mat.dataPool.map(hex));
  const opened = new Set<string>();
  const receiver = new Session(mat.recvKeys, { clock: realClock }, newSessionStats());
  const c0 = mat.contexts[0]!;
  const m1s = new Set(mat.contexts.map((c) => hex(c.m1)));
  const { prologue, psk } = mat;
  const fresh = (initiator: boolean) => new HandshakeState({ initiator, prologue, psk, s: initiator ? c0.idI.x25519 : c0.idR.x25519, e: initiator ? c0.eI : c0.eR });
  const isHandshakeError = (e: unknown) => e instanceof HandshakeError;
  const mustBe = (b: Uint8Array, genuineMsg: Uint8Array, what: string) => { if (!sameBytes(b, genuineMsg)) throw new Error(`a modified ${what} authenticated`); };
  return [
    {
      name: 'decodeHandshake', decode: decodeHandshake, pool: mat.handshakePool, prefixes: hsPrefixes, bodyStart: null, allowed: isWireError,
      check: (m, b) => { if (!sameBytes(reencodeHandshake(m as HandshakePacket), b)) throw new Error('re-encoding differs'); },
    },
    {
      name: 'decodeDataHeader', decode: decodeDataHeader, pool: mat.dataPool, prefixes: dataPrefixes, bodyStart: null, allowed: isWireError,
      check: (h, b) => { if (!sameBytes(encodeDataHeader(h as ReturnType<typeof decodeDataHeader>), b.subarray(0, 10))) throw new Error('re-encoding differs'); },
    },
    {
      name: 'decodeIdentity', decode: decodeIdentity, pool: mat.identityPool, prefixes: [u8(1), cat(u8(1), new Uint8Array(96), u8(0, 0))], bodyStart: null,
      allowed: isWireError,
      check: (id, b) => { if (!sameBytes(encodeIdentity(id as ReturnType<typeof decodeIdentity>), b)) throw new Error('re-encoding differs'); },
    },
    {
      // Documented: "Nothing in open() throws". Whatever opens must be a genuine packet, once.
      name: 'Session.open', decode: (b) => receiver.open(b), pool: mat.dataPool, prefixes: dataPrefixes, bodyStart: null, allowed: () => false,
      rejected: (o) => o === null,
      check: (o, b) => {
        const k = hex(b);
        if (!genuine.has(k)) throw new Error('a forged transport packet authenticated');
        if (opened.has(k)) throw new Error('a replayed transport packet was accepted');
        opened.add(k);
      },
    },
    {
      name: 'Noise read msg1', decode: (b) => fresh(false).readMessage(b), pool: mat.contexts.map((c) => c.m1), prefixes: [c0.m1.subarray(0, 32)],
      bodyStart: null, allowed: isHandshakeError, check: (_v, b) => { if (!m1s.has(hex(b))) throw new Error('a modified message 1 authenticated'); },
    },
    {
      name: 'Noise read msg2',
      decode: (b) => { const hs = fresh(true); hs.writeMessage(EMPTY); return hs.readMessage(b); },
      pool: [c0.m2, c0.m2, c0.m2, mat.contexts[1]!.m2], prefixes: [c0.m2.subarray(0, 32), c0.m2.subarray(0, 80)], bodyStart: null,
      allowed: isHandshakeError, check: (_v, b) => mustBe(b, c0.m2, 'message 2'),
    },
    {
      name: 'Noise read msg3',
      decode: (b) => {
        const hs = fresh(false);
        hs.readMessage(c0.m1);
        hs.writeMessage((h) => identityPayload(c0.idR, h, c0.certR));
        return hs.readMessage(b);
      },
      pool: [c0.m3, c0.m3, c0.m3, mat.contexts[1]!.m3], prefixes: [c0.m3.subarray(0, 48)], bodyStart: null,
      allowed: isHandshakeError, check: (_v, b) => mustBe(b, c0.m3, 'message 3'),
    },
  ];
}

// ---------------------------------------------------------------------------------------
// The receive path of a SecureEdgeListener

export interface ReceiveResult {
  /** Fuzz packets injected (real protocol packets not counted). */
  injected: number;
  /** Of those, packets that reached the victim's transport (later ones die with a closed edge). */
  delivered: number;
  phases: Record<string, number>;
  handshakesCompleted: number;
  /** Handshakes ended on purpose by one injected REPLY/FINISH/cookied HELLO (expected). */
  handshakesEndedByInjection: number;
  insiders: { accepted: number; refusedProtocol: number; refusedIdentity: number };
  victim: Record<string, unknown>;
  finalCheck: string;
  ms: number;
}

const flush = async (n = 4): Promise<void> => { for (let i = 0; i < n; i++) await new Promise((res) => setImmediate(res)); };
/** An initiator holds packets that arrive right after the confirmation until a 0 ms timer fires. */
const timerTick = (): Promise<void> => new Promise((res) => setTimeout(res, 2));

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error(`timed out: ${what}`)), ms); })]);
  } finally { clearTimeout(timer); }
}

type Hooked = Edge & { rawSend(p: Uint8Array): void; sent: Uint8Array[] };
type Injector = (p: Uint8Array, e: Hooked) => void;

/**
 * Injects `budget` fuzz packets into a victim SecureEdgeListener, phase by phase; pushes
 * every problem to `failures`.
 */
export async function fuzzReceivePath(budget: number, seed: number, mat: SecureMaterial, failures: string[]): Promise<ReceiveResult> {
  const t0 = performance.now();
  const r = prng(seed);
  const fail = (msg: string) => { if (failures.length < MAX_REPORTED * 2) failures.push(`receive path: ${msg}`); else failures.push(''); };
  const uncaught = (e: unknown) => fail(`uncaught exception: ${describe(e)}`);
  const unhandled = (e: unknown) => fail(`unhandled rejection: ${describe(e)}`);
  process.on('uncaughtException', uncaught);
  process.on('unhandledRejection', unhandled);

  const net = new MemoryNetwork();
  const receiveErrors: string[] = [];
  const log = createLogger('debug', '', (line) => { if (/receive error/.test(line)) receiveErrors.push(line); });
  const mk = (identity: Identity, name: string, logger = createLogger('silent')) => new SecureEdgeListener(net.listener(), {
    identity, groupKey: mat.psk, namespace: FUZZ_NAMESPACE, clock: realClock, random: seededRandom(subSeed(seed, name)), handshakeTimeoutMs: 5000, log: logger,
  }) as SecureEdgeListener & { inner: MemoryEdgeListener };
  const victim = mk(identityFrom(r), 'victim', log);
  const honest = mk(identityFrom(r), 'honest');
  const attacker = net.listener();
  const insiderId = identityFrom(r);

  // Hook every inner edge of the honest listener: packets it sends pass through `injector`.
  let injector: Injector | undefined;
  const hook = (e: Edge): Hooked => {
    const h = e as Hooked;
    const raw = e.send.bind(e);
    h.rawSend = raw;
    h.sent = [];
    h.send = (p) => { h.sent.push(copy(p)); if (injector) injector(p, h); else raw(p); };
    return h;
  };
  const honestInner = honest.inner;
  const create = honestInner.createEdge.bind(honestInner);
  honestInner.createEdge = async (ta) => hook(await create(ta));
  const onInner = honestInner.onEdge;
  honestInner.onEdge = (e) => { hook(e); onInner(e); };

  // Until pair() takes over an edge, nothing may be delivered on it.
  let strays = 0;
  victim.onEdge = (e) => { e.onPacket = () => { strays++; }; };
  const honestInbound: SecureEdge[] = [];
  honest.onEdge = (e) => { honestInbound.push(e as SecureEdge); e.onPacket = () => { strays++; }; };

  await Promise.all([victim.start(), honest.start(), attacker.start()]);
  const victimTA = victim.localTAs()[0]!;
  const honestTA = honest.localTAs()[0]!;

  const res: ReceiveResult = {
    injected: 0, delivered: 0, phases: {}, handshakesCompleted: 0, handshakesEndedByInjection: 0,
    insiders: { accepted: 0, refusedProtocol: 0, refusedIdentity: 0 }, victim: {}, finalCheck: 'not run', ms: 0,
  };
  const deliveredBefore = () => victim.inner.stats.packetsIn;
  const count = (phase: string, n: number) => { res.injected += n; res.phases[phase] = (res.phases[phase] ?? 0) + n; };

  /** A fuzz packet: garbage, garbage behind a valid header, or a mutation of something real. */
  const gen = (pool: readonly Uint8Array[]): Uint8Array => {
    const k = r.int(10);
    if (k === 0) return r.bytes(r.next() < 0.9 ? r.int(100) : r.int(1500));
    if (k <= 2) {
      const pre = r.pick([u8(T_HELLO, 1, 0), u8(T_HELLO, 1, 16), u8(T_RETRY, 1), u8(T_REPLY, 1), u8(T_FINISH, 1), u8(T_ABORT, 1, 1 + r.int(4)), u8(T_DATA, 0), u8(T_CONFIRM, 0), u8(T_DATA, 1), u8(T_DATA, 0xff)]);
      return cat(pre, r.bytes(r.int(3) === 0 ? r.int(300) : r.int(80)));
    }
    const src = r.pick(pool);
    return r.int(12) === 0 ? copy(src) : mutate(r, src, null);
  };
  const decodes = (p: Uint8Array): HandshakePacket | undefined => { try { return decodeHandshake(p); } catch { return undefined; } };
  /**
   * n packets none of which is `excluded` (terminal packets, and genuine ones whose effect
   * would change the expected outcome), then optionally one `terminal` packet at the end.
   */
  const batch = (n: number, pool: readonly Uint8Array[], excluded: ((p: Uint8Array) => boolean) | undefined, terminal: ((p: Uint8Array) => boolean) | undefined,
    withTerminal: boolean, terminalPool: readonly Uint8Array[]): { packets: Uint8Array[]; terminal: boolean } => {
    const packets: Uint8Array[] = [];
    while (packets.length < n) {
      const p = gen(pool);
      if (!excluded || !excluded(p)) packets.push(p);
    }
    let term = false;
    if (withTerminal && terminal) {
      for (let i = 0; i < 200 && !term; i++) {
        const p = mutate(r, r.pick(terminalPool), null);
        if (terminal(p)) { packets.push(p); term = true; }
      }
    }
    return { packets, terminal: term };
  };

  const staticPool = [...mat.handshakePool, ...mat.dataPool];
  const shares = { unbound: 0.36, responder: 0.2, established: 0.22, initiator: 0.17, insider: 0.05 };
  const budgetOf = (k: keyof typeof shares) => Math.max(1, Math.round(budget * shares[k]));

  try {
    // Phase 1: a raw attacker edge; the victim has no state for it until a cookied HELLO.
    {
      const target = res.injected + budgetOf('unbound');
      while (res.injected < target) {
        const edge = await attacker.createEdge(victimTA);
        const inbox: Uint8Array[] = [];
        edge.onPacket = (p) => inbox.push(p);
        const wrongKey = r.int(4) === 0;
        const hs = new HandshakeState({ initiator: true, prologue: mat.prologue, s: insiderId.x25519, psk: wrongKey ? r.bytes(32) : mat.psk, e: x25519FromPrivate(r.bytes(32)) });
        const m1 = hs.writeMessage(EMPTY);
        edge.send(encodeHello(undefined, m1));
        await flush();
        const retry = inbox.map(decodes).find((m) => m?.type === T_RETRY);
        if (!retry || retry.type !== T_RETRY) { fail('no RETRY for a cookie-less HELLO'); break; }
        const good = encodeHello(retry.cookie, m1);
        const eph = m1.subarray(0, 32);
        // Terminal: decodes as a cookied HELLO with the right cookie and ephemeral, but not the genuine HELLO.
        const terminal = (p: Uint8Array) => {
          const m = decodes(p);
          return m?.type === T_HELLO && !!m.cookie && sameBytes(m.cookie, retry.cookie) && sameBytes(m.noise.subarray(0, 32), eph) && !sameBytes(p, good);
        };
        const genuine = (p: Uint8Array) => sameBytes(p, good);
        const n = 8 + r.int(32);
        const b = batch(n, [good, encodeHello(undefined, m1), ...staticPool], (p) => terminal(p) || genuine(p), terminal, r.chance(0.3), [good]);
        const d0 = deliveredBefore();
        for (const p of b.packets) edge.send(p);
        const sendGenuine = !b.terminal && r.chance(0.25);
        if (sendGenuine) edge.send(good); // makes the victim hold a responder handshake for this edge
        await flush();
        res.delivered += deliveredBefore() - d0 - (sendGenuine ? 1 : 0);
        count('unbound edge', b.packets.length);
        if (b.terminal) {
          res.handshakesEndedByInjection++;
          if (!edge.closed) fail(`a cookied HELLO with a broken Noise message did not close the edge: ${hex(b.packets[b.packets.length - 1]!)} vs genuine ${hex(good)}; stats ${JSON.stringify(victim.stats.handshakesFailed)} pending ${victim.pendingHandshakes}`);
        } else if (sendGenuine) {
          if (!inbox.some((p) => p[0] === T_REPLY)) fail('the genuine cookied HELLO after a garbage batch got no REPLY');
          if (victim.pendingHandshakes !== 1) fail(`expected 1 pending handshake, have ${victim.pendingHandshakes}`);
        } else if (edge.closed) fail('a batch without a valid cookied HELLO closed the edge');
        edge.close('done');
        await flush(2);
      }
      if (victim.pendingHandshakes !== 0) fail(`${victim.pendingHandshakes} responder handshakes left after the attacker edges closed`);
    }

    /**
     * Collects what each end of an established pair receives, from now on, and checks it is
     * exactly the genuine packets sent by exchange(): nothing forged or replayed, nothing lost.
     */
    const pair = (he: SecureEdge, ve: SecureEdge) => {
      const gotV: string[] = [], gotH: string[] = [], expV: string[] = [], expH: string[] = [];
      ve.onPacket = (p) => gotV.push(Buffer.from(p).toString('latin1'));
      he.onPacket = (p) => gotH.push(Buffer.from(p).toString('latin1'));
      return async (tag: string, k: number): Promise<void> => {
        for (let i = 0; i < k; i++) {
          const a = `${tag} peer->victim ${i} ${'p'.repeat(r.int(60))}`, b = `${tag} victim->peer ${i}`;
          expV.push(a); expH.push(b);
          he.send(Buffer.from(a, 'latin1'));
          ve.send(Buffer.from(b, 'latin1'));
        }
        await flush();
        const dir = ve.inbound ? 'victim responder' : 'victim initiator';
        if (gotV.join('\n') !== expV.join('\n')) fail(`${tag} (${dir}): victim received ${gotV.length} packets, expected exactly the ${expV.length} genuine ones; first differing: ${JSON.stringify(gotV.find((x, i) => x !== expV[i])?.slice(0, 60))}`);
        if (gotH.join('\n') !== expH.join('\n')) fail(`${tag} (${dir}): peer received ${gotH.length} of the victim's ${expH.length} packets; peer edge ${he.established ? 'established' : he.closed ? 'closed' : 'handshaking'} ${JSON.stringify(he.sendState)}, victim edge ${JSON.stringify(ve.sendState)}`);
      };
    };

    // Phases 2 and 3: the honest listener connects to the victim. Packets are injected just
    // before the genuine FINISH (victim = responder waiting for message 3), then once the
    // edge is up (victim = established responder).
    {
      const target2 = budgetOf('responder'), target3 = budgetOf('established');
      let n2 = 0, n3 = 0;
      while (n2 < target2 || n3 < target3) {
        let terminalSent = false, genuineCopy = false;
        let realFinish: Uint8Array | undefined;
        injector = (p, e) => {
          if (p[0] === T_FINISH && !realFinish && n2 < target2) {
            realFinish = copy(p);
            const hello = e.sent.find((x) => x[0] === T_HELLO && x[2] === 16) ?? e.sent[0]!;
            const terminal = (x: Uint8Array) => decodes(x)?.type === T_FINISH && !sameBytes(x, p);
            const b = batch(8 + r.int(48), [p, hello, ...e.sent, ...staticPool], terminal, terminal, r.chance(0.15), [p]);
            for (const x of b.packets) e.rawSend(x);
            n2 += b.packets.length;
            count('responder awaiting msg3', b.packets.length);
            terminalSent = b.terminal;
            genuineCopy = b.packets.some((x) => sameBytes(x, p));
          }
          e.rawSend(p);
        };
        const d0 = deliveredBefore();
        let he: SecureEdge | undefined;
        try {
          he = await within(honest.createEdge(victimTA), 8000, 'handshake to the victim');
        } catch (e) {
          if (!(e instanceof HandshakeFailure)) fail(`createEdge to the victim rejected with ${describe(e)}`);
          else if (!terminalSent || genuineCopy) fail(`a handshake failed without a terminal packet (or after the genuine FINISH): ${e.message}`);
          else res.handshakesEndedByInjection++;
        }
        injector = undefined;
        await flush();
        // A genuine copy earlier in the batch completes the handshake first; the forgery is then ignored.
        if (he && terminalSent && !genuineCopy) fail('the victim accepted a handshake after a forged FINISH');
        if (he) {
          res.handshakesCompleted++;
          const hooked = he.inner as Hooked;
          const ve = victimLive(victim, he);
          if (!ve) { fail('victim has no edge for a completed handshake'); he.close(); continue; }
          const exchange = pair(he, ve);
          await timerTick();
          await exchange('before', 3);
          // Established: replays and mutations of real DATA, CONFIRM, FINISH, garbage.
          const real = hooked.sent.filter((x) => x[0] === T_DATA || x[0] === T_FINISH || x[0] === T_HELLO);
          const k = 16 + r.int(96);
          const b = batch(k, [...real, ...real, ...staticPool], undefined, undefined, false, []);
          for (const x of b.packets) hooked.rawSend(x);
          n3 += b.packets.length;
          count('established responder', b.packets.length);
          await flush();
          if (he.closed || !ve || ve.closed) fail('injected packets closed an established edge');
          else await exchange('after', 4);
          he.close('done');
          await flush(2);
        }
        res.delivered += deliveredBefore() - d0;
      }
    }

    // Phase 4: the victim connects to the honest listener. Packets are injected just before
    // the genuine REPLY (victim = initiator waiting for message 2), then once the edge is up.
    {
      const target = budgetOf('initiator');
      let n = 0;
      while (n < target) {
        let terminalSent = false, genuineCopy = false;
        let done = false;
        injector = (p, e) => {
          if (p[0] === T_REPLY && !done) {
            done = true;
            const terminal = (x: Uint8Array) => decodes(x)?.type === T_REPLY && !sameBytes(x, p);
            const b = batch(8 + r.int(40), [p, ...e.sent, ...staticPool], terminal, terminal, r.chance(0.15), [p]);
            for (const x of b.packets) e.rawSend(x);
            n += b.packets.length;
            count('initiator awaiting msg2', b.packets.length);
            terminalSent = b.terminal;
            genuineCopy = b.packets.some((x) => sameBytes(x, p));
          }
          e.rawSend(p);
        };
        const inbound0 = honestInbound.length;
        let ve: SecureEdge | undefined;
        try {
          ve = await within(victim.createEdge(honestTA), 8000, 'handshake from the victim');
        } catch (e) {
          if (!(e instanceof HandshakeFailure)) fail(`victim createEdge rejected with ${describe(e)}`);
          else if (!terminalSent || genuineCopy) fail(`a victim-initiated handshake failed without a terminal packet (or after the genuine REPLY): ${e.message}`);
          else res.handshakesEndedByInjection++;
        }
        injector = undefined;
        await flush();
        if (ve && terminalSent && !genuineCopy) fail('the victim accepted a forged REPLY');
        if (ve) {
          res.handshakesCompleted++;
          const he = honestInbound[inbound0];
          if (!he) { fail('honest listener has no edge for a completed handshake'); ve.close(); continue; }
          const exchange = pair(he, ve);
          await timerTick();
          await exchange('before', 3);
          const hooked = he.inner as Hooked;
          const real = hooked.sent.filter((x) => x[0] !== T_ABORT);
          const b = batch(16 + r.int(64), [...real, ...real, ...staticPool], undefined, undefined, false, []);
          for (const x of b.packets) hooked.rawSend(x);
          n += b.packets.length;
          count('established initiator', b.packets.length);
          await flush();
          if (ve.closed || he.closed) fail('injected packets closed an established (victim-initiated) edge');
          else await exchange('after', 4);
          ve.close('done');
          await flush(2);
        }
      }

    }

    // Phase 5: insiders (they hold the group key) send mutated identity payloads, as
    // initiator (message 3) and as responder (message 2). The outcome must be exactly what
    // the payload deserves: malformed → ABORT protocol, bad signature → ABORT identity,
    // otherwise accepted.
    {
      const target = budgetOf('insider');
      let n = 0;
      const mutateIdentity = (valid: Uint8Array): Uint8Array => (r.int(6) === 0 ? valid : r.int(8) === 0 ? r.bytes(r.int(200)) : mutate(r, valid, null));
      const expected = (payload: Uint8Array, h: Uint8Array, staticKey: Uint8Array): 'protocol' | 'identity' | 'ok' => {
        let id;
        try { id = decodeIdentity(payload); } catch { return 'protocol'; }
        return verifySignature(id.publicKey, cat(SIG_LABEL, h, staticKey), id.signature) ? 'ok' : 'identity';
      };
      const tally = (o: 'protocol' | 'identity' | 'ok') => {
        if (o === 'ok') res.insiders.accepted++; else if (o === 'protocol') res.insiders.refusedProtocol++; else res.insiders.refusedIdentity++;
      };
      while (n < target) {
        n++;
        count(n % 2 ? 'insider msg3 identity' : 'insider msg2 identity', 1);
        const certificate = r.int(3) === 0 ? r.bytes(r.int(100)) : undefined;
        if (n % 2) {
          // Insider initiator against the victim.
          const edge = await attacker.createEdge(victimTA);
          const inbox: Uint8Array[] = [];
          edge.onPacket = (p) => inbox.push(p);
          const hs = new HandshakeState({ initiator: true, prologue: mat.prologue, s: insiderId.x25519, psk: mat.psk });
          const m1 = hs.writeMessage(EMPTY);
          edge.send(encodeHello(undefined, m1));
          await flush();
          const retry = inbox.map(decodes).find((m) => m?.type === T_RETRY);
          if (retry?.type !== T_RETRY) { fail('insider: no RETRY'); continue; }
          inbox.length = 0;
          edge.send(encodeHello(retry.cookie, m1));
          await flush();
          const reply = inbox.map(decodes).find((m) => m?.type === T_REPLY);
          if (reply?.type !== T_REPLY) { fail('insider: no REPLY'); continue; }
          hs.readMessage(reply.noise);
          let want: 'protocol' | 'identity' | 'ok' = 'ok';
          const m3 = hs.writeMessage((h) => { const p = mutateIdentity(identityPayload(insiderId, h, certificate)); want = expected(p, h, insiderId.x25519.publicKey); return p; });
          inbox.length = 0;
          const d0 = deliveredBefore();
          edge.send(encodeNoise(T_FINISH, m3));
          await flush();
          res.delivered += deliveredBefore() - d0;
          const got = inbox[0];
          const outcome = got?.[0] === T_CONFIRM ? 'ok' : got?.[0] === T_ABORT ? (got[2] === ABORT_PROTOCOL ? 'protocol' : got[2] === ABORT_IDENTITY ? 'identity' : `abort ${got[2]}`) : `no answer (${got?.[0]})`;
          if (outcome !== want) fail(`insider msg3: expected ${want}, victim answered ${outcome}`);
          tally(want);
          edge.close('done');
          await flush(2);
        } else {
          // Insider responder: the victim connects to the attacker listener.
          let want: 'protocol' | 'identity' | 'ok' = 'ok';
          let session: Session | undefined;
          attacker.onEdge = (edge) => {
            const hs = new HandshakeState({ initiator: false, prologue: mat.prologue, s: insiderId.x25519, psk: mat.psk });
            edge.onPacket = (p) => {
              const m = decodes(p);
              if (m?.type === T_HELLO && hs.messageIndex === 0) {
                hs.readMessage(m.noise);
                const m2 = hs.writeMessage((h) => { const x = mutateIdentity(identityPayload(insiderId, h, certificate)); want = expected(x, h, insiderId.x25519.publicKey); return x; });
                edge.send(encodeNoise(T_REPLY, m2));
              } else if (m?.type === T_FINISH && hs.messageIndex === 2) {
                hs.readMessage(m.noise);
                session = new Session(hs.split(), { clock: realClock }, newSessionStats());
                edge.send(session.seal(T_CONFIRM, EMPTY));
              }
            };
          };
          let outcome: string;
          try {
            const ve = await within(victim.createEdge(attacker.ta), 8000, 'victim → insider');
            outcome = 'ok';
            ve.close('done');
          } catch (e) {
            if (!(e instanceof HandshakeFailure)) { fail(`victim → insider rejected with ${describe(e)}`); continue; }
            outcome = e.kind;
          }
          if (outcome !== want) fail(`insider msg2: expected ${want}, victim ended with ${outcome}`);
          tally(want);
          attacker.onEdge = () => {};
          await flush(2);
        }
      }
    }

    // Finally: the victim still works both ways.
    {
      const a = await within(honest.createEdge(victimTA), 8000, 'final handshake to the victim');
      const ve = victimLive(victim, a);
      if (!ve) fail('final: victim has no edge');
      else { await timerTick(); await pair(a, ve)('final', 20); }
      const inbound0 = honestInbound.length;
      const b = await within(victim.createEdge(honestTA), 8000, 'final handshake from the victim');
      const he = honestInbound[inbound0];
      if (!he) fail('final: honest listener has no edge for the victim-initiated handshake');
      else { await timerTick(); await pair(he, b)('final', 20); }
      a.close('done');
      b.close('done');
      await flush(3);
      if (strays) fail(`${strays} packets delivered on edges before the harness expected any`);
      res.finalCheck = 'ok: handshakes and data both ways';
    }

    if (victim.pendingHandshakes !== 0) fail(`victim holds ${victim.pendingHandshakes} pending handshakes at the end`);
    if (victim.edgeCount !== 0) fail(`victim holds ${victim.edgeCount} live edges at the end`);
    if (victim.wrappedEdges !== 0) fail(`victim wraps ${victim.wrappedEdges} inner edges at the end`);
  } catch (e) {
    fail(`harness aborted: ${describe(e)}`);
    res.finalCheck = 'FAILED';
  } finally {
    injector = undefined;
    for (const [name, l] of [['victim', victim], ['honest', honest]] as const) {
      if (l.stats.handlerErrors) fail(`${name}: ${l.stats.handlerErrors} handler errors (exceptions caught inside the secure layer)`);
      if (l.inner.stats.handlerErrors) fail(`${name}: ${l.inner.stats.handlerErrors} exceptions escaped the secure layer into the transport`);
    }
    if (attacker.stats.handlerErrors) fail(`attacker: ${attacker.stats.handlerErrors} handler errors`);
    for (const line of receiveErrors.slice(0, 5)) fail(`victim logged ${line}`);
    await Promise.all([victim.stop(), honest.stop(), attacker.stop()]).catch((e) => fail(`stop failed: ${describe(e)}`));
    await flush(2);
    process.off('uncaughtException', uncaught);
    process.off('unhandledRejection', unhandled);
  }
  const s = victim.stats;
  res.victim = {
    packetsIn: s.packetsIn, malformed: s.malformed, retriesSent: s.retriesSent, cookiesInvalid: s.cookiesInvalid, decryptFailures: s.decryptFailures,
    replays: s.replays, tooOld: s.tooOld, badEpoch: s.badEpoch, handshakesOk: s.handshakesOk, handshakesFailed: s.handshakesFailed,
    handlerErrors: s.handlerErrors,
  };
  res.ms = performance.now() - t0;
  return res;
}

/** The victim's live edge that is the far end of the honest edge `he`. */
function victimLive(victim: SecureEdgeListener, he: SecureEdge): SecureEdge | undefined {
  const live = (victim as unknown as { live: Set<SecureEdge> }).live;
  for (const e of live) if (e.remoteTA.equals(he.localTA) && !e.closed && e.inbound !== he.inbound) {
    if ((e.inner as unknown as { twin?: Edge }).twin === he.inner) return e;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------
// Driver

export type Suite = 'all' | 'secure';

const WEIGHTS: Record<Suite, Record<string, number>> = {
  all: {
    decodeValue: 14, decodeLink: 12, decodeAh: 10, decodeRpc: 12, decodeNodeInfo: 10,
    decodeHandshake: 12, decodeDataHeader: 8, decodeIdentity: 8, 'Session.open': 5,
    'Noise read msg1': 1.2, 'Noise read msg2': 1, 'Noise read msg3': 0.8, receive: 6,
    decodeOffloadHeader: 4, decodeRequest: 3, 'Reassembly.add': 3,
  },
  secure: {
    decodeHandshake: 30, decodeDataHeader: 18, decodeIdentity: 18, 'Session.open': 10,
    'Noise read msg1': 1.5, 'Noise read msg2': 1, 'Noise read msg3': 0.5, receive: 21,
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
