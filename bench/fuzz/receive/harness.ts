// The receive-path harness: a victim SecureEdgeListener, an honest one whose every packet
// passes through an on-path injector (MemoryNetwork.intercept), a raw attacker listener,
// and the packet generators, batches and checks that the attack phases share.
import type { Identity } from '../../../src/edge/identity.js';
import type { SecureEdge } from '../../../src/edge/secure-edge.js';
import { SecureEdgeListener } from '../../../src/edge/secure-listener.js';
import {
  ABORT_AUTH, COOKIE_LEN, decodeHandshake, SECURE_WIRE_VERSION, T_ABORT, T_CONFIRM, T_DATA, T_FINISH, T_HELLO, T_REPLY, T_RETRY, type HandshakePacket,
} from '../../../src/edge/secure-wire.js';
import type { Edge } from '../../../src/transport/edge.js';
import { MemoryNetwork, type InterceptVerdict, type MemoryEdgeListener } from '../../../src/transport/memory.js';
import type { TransportAddress } from '../../../src/transport/ta.js';
import { realClock } from '../../../src/util/clock.js';
import { createLogger, type Logger } from '../../../src/util/log.js';
import { seededRandom } from '../../../src/util/random.js';
import { cat, copy, u8 } from '../bytes.js';
import { FUZZ_NAMESPACE, identityFrom, type SecureMaterial } from '../material.js';
import { mutate } from '../mutate.js';
import { prng, subSeed, type Rng } from '../rng.js';
import { describe, MAX_REPORTED } from '../target.js';

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

export const flush = async (n = 4): Promise<void> => { for (let i = 0; i < n; i++) await new Promise((res) => setImmediate(res)); };
/** An initiator holds packets that arrive right after the confirmation until a 0 ms timer fires. */
export const timerTick = (): Promise<void> => new Promise((res) => setTimeout(res, 2));

export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => { timer = setTimeout(() => rej(new Error(`timed out: ${what}`)), ms); })]);
  } finally { clearTimeout(timer); }
}

/**
 * Bounds a phase whose rounds can fail before injecting anything: stalled(total) is true,
 * once reported, when `rounds` rounds have started with the same total injected.
 */
export function stallGuard(fail: (msg: string) => void, what: string, rounds = 20): (injected: number) => boolean {
  let last = -1, idle = 0;
  return (injected) => {
    if (injected !== last) { last = injected; return false; }
    if (++idle < rounds) return false;
    fail(`${what}: ${rounds} rounds injected nothing; phase abandoned`);
    return true;
  };
}

/** Decides what becomes of a packet the honest listener sends on `edge` (see InterceptVerdict). */
export type Injector = (p: Uint8Array, edge: Edge) => InterceptVerdict;

const SHARES = { unbound: 0.36, responder: 0.2, established: 0.22, initiator: 0.17, insider: 0.05 };

export interface Harness {
  r: Rng;
  mat: SecureMaterial;
  res: ReceiveResult;
  victim: SecureEdgeListener;
  victimInner: MemoryEdgeListener;
  honest: SecureEdgeListener;
  honestInner: MemoryEdgeListener;
  /** A bare transport listener: raw edges to the victim, or a hand-driven responder. */
  attacker: MemoryEdgeListener;
  victimTA: TransportAddress;
  honestTA: TransportAddress;
  /** Holds the group key, like a member. */
  insiderId: Identity;
  /** Edges the honest listener accepted, in order. */
  honestInbound: SecureEdge[];
  /** Handshake and transport packets, all valid. */
  staticPool: Uint8Array[];
  /** While set, sees every packet the honest listener sends and says what to deliver instead. */
  injector: Injector | undefined;
  fail(msg: string): void;
  /** Counts n fuzz packets injected in a phase. */
  count(phase: string, n: number): void;
  /** Packets the victim's transport has received so far. */
  deliveredBefore(): number;
  /** The number of fuzz packets a phase should inject. */
  budgetOf(k: keyof typeof SHARES): number;
  /** A fuzz packet: garbage, garbage behind a valid header, or a mutation of something in `pool`. */
  gen(pool: readonly Uint8Array[]): Uint8Array;
  decodes(p: Uint8Array): HandshakePacket | undefined;
  /**
   * n packets none of which is `excluded` (terminal packets, and genuine ones whose effect
   * would change the expected outcome), then optionally one `terminal` packet at the end.
   */
  batch(n: number, pool: readonly Uint8Array[], excluded: ((p: Uint8Array) => boolean) | undefined, terminal: ((p: Uint8Array) => boolean) | undefined,
    withTerminal: boolean, terminalPool: readonly Uint8Array[]): { packets: Uint8Array[]; terminal: boolean };
  /** What the honest listener itself sent on one of its transport edges (injected packets excluded). */
  sentOn(edge: Edge): Uint8Array[];
  /** Sends packets on one of the honest listener's transport edges, past the injector and the record. */
  inject(edge: Edge, packets: readonly Uint8Array[]): void;
  /**
   * Collects what each end of an established pair receives, from now on; the function it
   * returns sends k genuine packets each way and checks that each end received exactly the
   * genuine packets: nothing forged or replayed, nothing lost.
   */
  pair(he: SecureEdge, ve: SecureEdge): (tag: string, k: number) => Promise<void>;
  /** The victim's live edge that is the far end of the honest edge `he`. */
  victimLive(he: SecureEdge): SecureEdge | undefined;
  /** Packets delivered on edges before pair() took them over. */
  strays(): number;
  /** Checks what must hold at the end, stops the listeners and removes the process handlers. */
  close(): Promise<void>;
}

export async function openHarness(budget: number, seed: number, mat: SecureMaterial, failures: string[]): Promise<Harness> {
  const r = prng(seed);
  const fail = (msg: string) => { if (failures.length < MAX_REPORTED * 2) failures.push(`receive path: ${msg}`); else failures.push(''); };
  const uncaught = (e: unknown) => fail(`uncaught exception: ${describe(e)}`);
  const unhandled = (e: unknown) => fail(`unhandled rejection: ${describe(e)}`);
  process.on('uncaughtException', uncaught);
  process.on('unhandledRejection', unhandled);

  const net = new MemoryNetwork();
  const receiveErrors: string[] = [];
  const log = createLogger('debug', '', (line) => { if (/receive error/.test(line)) receiveErrors.push(line); });
  const mk = (identity: Identity, name: string, inner: MemoryEdgeListener, logger: Logger = createLogger('silent')) => new SecureEdgeListener(inner, {
    identity, groupKey: mat.psk, namespace: FUZZ_NAMESPACE, clock: realClock, random: seededRandom(subSeed(seed, name)), handshakeTimeoutMs: 5000, log: logger,
  });
  const victimInner = net.listener(), honestInner = net.listener();
  const victim = mk(identityFrom(r), 'victim', victimInner, log);
  const honest = mk(identityFrom(r), 'honest', honestInner);
  const attacker = net.listener();
  const insiderId = identityFrom(r);

  // Everything the honest listener sends passes through the injector, if one is set.
  const sent = new WeakMap<Edge, Uint8Array[]>();
  const sentOn = (e: Edge): Uint8Array[] => { let s = sent.get(e); if (!s) sent.set(e, s = []); return s; };
  let injecting = false;
  net.intercept = (p, from) => {
    if (injecting || !from.localTA.equals(honestInner.ta)) return 'pass';
    sentOn(from).push(copy(p));
    return h.injector ? h.injector(p, from) : 'pass';
  };
  const inject = (e: Edge, packets: readonly Uint8Array[]) => {
    injecting = true;
    try { for (const p of packets) e.send(p); } finally { injecting = false; }
  };

  // Until pair() takes over an edge, nothing may be delivered on it.
  let strays = 0;
  const victimInbound = new Set<SecureEdge>();
  victim.onEdge = (e) => { victimInbound.add(e as SecureEdge); e.onPacket = () => { strays++; }; };
  const honestInbound: SecureEdge[] = [];
  honest.onEdge = (e) => { honestInbound.push(e as SecureEdge); e.onPacket = () => { strays++; }; };

  await Promise.all([victim.start(), honest.start(), attacker.start()]);

  const res: ReceiveResult = {
    injected: 0, delivered: 0, phases: {}, handshakesCompleted: 0, handshakesEndedByInjection: 0,
    insiders: { accepted: 0, refusedProtocol: 0, refusedIdentity: 0 }, victim: {}, finalCheck: 'not run', ms: 0,
  };

  const gen = (pool: readonly Uint8Array[]): Uint8Array => {
    const k = r.int(10);
    if (k === 0) return r.bytes(r.next() < 0.9 ? r.int(100) : r.int(1500));
    if (k <= 2) {
      const v = SECURE_WIRE_VERSION;
      const pre = r.pick([u8(T_HELLO, v, 0), u8(T_HELLO, v, COOKIE_LEN), u8(T_RETRY, v), u8(T_REPLY, v), u8(T_FINISH, v), u8(T_ABORT, v, ABORT_AUTH + r.int(4)), u8(T_DATA, 0), u8(T_CONFIRM, 0), u8(T_DATA, 1), u8(T_DATA, 0xff)]);
      return cat(pre, r.bytes(r.int(3) === 0 ? r.int(300) : r.int(80)));
    }
    const src = r.pick(pool);
    return r.int(12) === 0 ? copy(src) : mutate(r, src, null);
  };

  const h: Harness = {
    r, mat, res, victim, victimInner, honest, honestInner, attacker, insiderId, honestInbound, sentOn, inject, gen,
    victimTA: victim.localTAs()[0]!,
    honestTA: honest.localTAs()[0]!,
    staticPool: [...mat.handshakePool, ...mat.dataPool],
    injector: undefined,
    fail,
    count: (phase, n) => { res.injected += n; res.phases[phase] = (res.phases[phase] ?? 0) + n; },
    deliveredBefore: () => victimInner.stats.packetsIn,
    budgetOf: (k) => Math.max(1, Math.round(budget * SHARES[k])),
    decodes: (p) => { try { return decodeHandshake(p); } catch { return undefined; } },
    batch(n, pool, excluded, terminal, withTerminal, terminalPool) {
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
    },
    pair(he, ve) {
      const gotV: string[] = [], gotH: string[] = [], expV: string[] = [], expH: string[] = [];
      ve.onPacket = (p) => gotV.push(Buffer.from(p).toString('latin1'));
      he.onPacket = (p) => gotH.push(Buffer.from(p).toString('latin1'));
      return async (tag, k) => {
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
    },
    victimLive(he) {
      // The in-memory transport pairs each edge with its twin, the far end.
      for (const e of victimInbound) {
        if (e.closed) victimInbound.delete(e);
        else if (e.remoteTA.equals(he.localTA) && (e.inner as { twin?: Edge }).twin === he.inner) return e;
      }
      return undefined;
    },
    strays: () => strays,
    async close() {
      h.injector = undefined;
      for (const [name, l, inner] of [['victim', victim, victimInner], ['honest', honest, honestInner]] as const) {
        if (l.stats.handlerErrors) fail(`${name}: ${l.stats.handlerErrors} handler errors (exceptions caught inside the secure layer)`);
        if (inner.stats.handlerErrors) fail(`${name}: ${inner.stats.handlerErrors} exceptions escaped the secure layer into the transport`);
      }
      if (attacker.stats.handlerErrors) fail(`attacker: ${attacker.stats.handlerErrors} handler errors`);
      for (const line of receiveErrors.slice(0, 5)) fail(`victim logged ${line}`);
      await Promise.all([victim.stop(), honest.stop(), attacker.stop()]).catch((e) => fail(`stop failed: ${describe(e)}`));
      await flush(2);
      net.intercept = undefined;
      process.off('uncaughtException', uncaught);
      process.off('unhandledRejection', unhandled);
    },
  };
  return h;
}
