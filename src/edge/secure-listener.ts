// SecureEdgeListener: wraps any EdgeListener so every edge it makes or accepts runs the
// Noise_XXpsk3 handshake first; it exposes the same EdgeListener interface, so the layers
// above do not change (Brunet's SecureEdgeListener, with a modern protocol).
//
// Anti-spoofing: an inbound edge gets no handshake state until its HELLO carries a cookie
// = HMAC-SHA256(secret, remote TA || 0 || initiator ephemeral)[0..16], which the initiator
// can only know if it receives at its claimed source address. HELLOs without one get a
// stateless RETRY (smaller than the HELLO, so no amplification). The secret rotates every
// 2 minutes; cookies of the current and the previous secret are accepted.
//
// Inbound inner edges that never produce a valid HELLO are remembered (a bounded map of
// edge → arrival time, no crypto state) only so they can be closed: the inner transport
// already allocated them. They are swept when a new inbound edge arrives (those older than
// the handshake timeout) and the oldest is closed beyond MAX_UNBOUND_EDGES.
import type { Edge, EdgeListener } from '../transport/edge.js';
import type { TaKind, TransportAddress } from '../transport/ta.js';
import type { Clock } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/log.js';
import type { RandomSource } from '../util/random.js';
import { WireError } from '../wire/value.js';
import type { AeadBackend } from './aead.js';
import type { Identity } from './identity.js';
import { bytesEqual, hmacSha256, wipe } from './primitives.js';
import { SecureEdge, type SecureEdgeHost } from './secure-edge.js';
import { newSecureStats, type FailureKind, type SecureStats, type VerifyPeer } from './secure-types.js';
import { COOKIE_LEN, MAX_CERTIFICATE, T_HELLO, decodeHandshake, encodeRetry } from './secure-wire.js';

export const COOKIE_ROTATE_MS = 120_000;
/** Retransmits go out after 0.25, 0.75, 1.75 and 3.75 s: a peer that has not answered by 4 s is not there (the Linker moves on to its next TA). */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 4000;
/** Cap on remembered unauthenticated inbound edges; the oldest is closed beyond it. */
export const MAX_UNBOUND_EDGES = 4096;
export const SECURE_PROTOCOL_VERSION = 'brunet-ts/secure-edge/1';

/** The Noise prologue: binds the protocol version and the overlay namespace. */
export function securePrologue(namespace: string): Uint8Array {
  return new TextEncoder().encode(`${SECURE_PROTOCOL_VERSION}\0${namespace}`);
}

export interface SecureListenerOptions {
  identity: Identity;
  /** 32-byte group secret (see groupKey()). */
  groupKey: Uint8Array;
  /** Overlay namespace; peers in another namespace cannot complete a handshake. */
  namespace: string;
  clock: Clock;
  random: RandomSource;
  /** Extra admission check (e.g. group CA); null accepts, a string refuses. */
  verifyPeer?: VerifyPeer;
  /** Opaque certificate presented to peers (passed to their verifyPeer). */
  certificate?: Uint8Array;
  /** Whole-handshake deadline; default 10 s. */
  handshakeTimeoutMs?: number;
  rekeyAfterPackets?: number;
  rekeyAfterMs?: number;
  /** How long a receiver keeps the previous epoch's key after a rekey. */
  rekeyGraceMs?: number;
  /** ChaCha20-Poly1305 for the transport phase; default: sodium-native if it loads, else node:crypto (aead.ts). */
  aead?: AeadBackend;
  log?: Logger;
}

export class SecureEdgeListener implements EdgeListener {
  readonly stats: SecureStats = newSecureStats();
  onEdge: (edge: Edge) => void = () => {};
  private readonly host: SecureEdgeHost;
  private readonly log: Logger;
  /** Responder handshakes in progress, by inner edge. Empty until a cookie checks out. */
  private readonly pending = new Map<Edge, SecureEdge>();
  private readonly initiating = new Set<SecureEdge>();
  private readonly live = new Set<SecureEdge>();
  private readonly unbound = new Map<Edge, number>();
  private cookie: { period: number; cur: Buffer | undefined; prev: Buffer | undefined } = { period: NaN, cur: undefined, prev: undefined };
  private running = false;

  constructor(readonly inner: EdgeListener, private readonly o: SecureListenerOptions) {
    if (o.groupKey.length !== 32) throw new Error(`groupKey must be 32 bytes, got ${o.groupKey.length} (derive it with groupKey(passphrase))`);
    if (o.certificate && o.certificate.length > MAX_CERTIFICATE) throw new Error(`certificate larger than ${MAX_CERTIFICATE} bytes`);
    this.log = o.log ?? silentLogger;
    const handshakeTimeoutMs = o.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.host = {
      identity: o.identity,
      psk: Uint8Array.from(o.groupKey),
      prologue: securePrologue(o.namespace),
      certificate: o.certificate,
      clock: o.clock,
      verifyPeer: o.verifyPeer,
      handshakeTimeoutMs,
      sessionOptions: { clock: o.clock, rekeyAfterPackets: o.rekeyAfterPackets, rekeyAfterMs: o.rekeyAfterMs, graceMs: o.rekeyGraceMs, aead: o.aead },
      stats: this.stats,
      log: this.log,
      established: (e) => this.onEstablished(e),
      failed: (e, kind, reason) => this.onFailed(e, kind, reason),
      closed: (e) => { this.live.delete(e); },
    };
    inner.onEdge = (e) => this.onInnerEdge(e);
  }

  get kind(): TaKind { return this.inner.kind; }
  localTAs(): TransportAddress[] { return this.inner.localTAs(); }
  /** Established secure edges. */
  get edgeCount(): number { return this.live.size; }
  /** Established security associations (Information.Info `sas`). */
  get securityAssociations(): number { return this.live.size; }
  /** Inner edges currently wrapped: handshaking or established (Information.Info `wedges`). */
  get wrappedEdges(): number { return this.live.size + this.pending.size + this.initiating.size; }
  /** Responder handshakes holding state (only after a valid cookie). */
  get pendingHandshakes(): number { return this.pending.size; }
  get identity(): Identity { return this.o.identity; }

  /** The established secure edges, inbound and outbound (e.g. to close a revoked member's). */
  establishedEdges(): SecureEdge[] {
    return [...this.live].filter((e) => e.established);
  }

  async start(): Promise<void> {
    await this.inner.start();
    this.running = true;
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const e of [...this.initiating, ...this.pending.values(), ...this.live]) e.close('listener stopped');
    for (const e of [...this.unbound.keys()]) e.close('listener stopped');
    this.unbound.clear();
    wipe(this.cookie.cur);
    wipe(this.cookie.prev);
    this.cookie = { period: NaN, cur: undefined, prev: undefined };
    await this.inner.stop();
  }

  /** Opens an inner edge and resolves once the secure handshake is done. */
  async createEdge(ta: TransportAddress): Promise<SecureEdge> {
    if (!this.running) throw new Error(`secure ${this.kind} listener not started`);
    const innerEdge = await this.inner.createEdge(ta);
    const edge = new SecureEdge(this.host, innerEdge);
    this.initiating.add(edge);
    return edge._initiate();
  }

  private onInnerEdge(inner: Edge): void {
    if (!this.running) { inner.close('secure listener not running'); return; }
    const now = this.o.clock.now();
    this.sweepUnbound(now);
    this.unbound.set(inner, now);
    if (this.unbound.size > MAX_UNBOUND_EDGES) {
      const oldest = this.unbound.keys().next().value!;
      this.unbound.delete(oldest);
      oldest.close('too many unauthenticated edges');
    }
    inner.onPacket = (p) => this.onUnboundPacket(inner, p);
    inner.onClose = () => { this.unbound.delete(inner); };
  }

  private sweepUnbound(now: number): void {
    for (const [e, t] of this.unbound) {
      if (now - t < this.host.handshakeTimeoutMs) break; // insertion order = age order
      this.unbound.delete(e);
      e.close('no secure handshake');
    }
  }

  /** A packet on an inbound edge without handshake state: only a cookied HELLO creates any. */
  private onUnboundPacket(inner: Edge, p: Uint8Array): void {
    this.stats.packetsIn++;
    try {
      const m = decodeHandshake(p);
      if (m.type !== T_HELLO) { this.stats.malformed++; return; }
      const eph = m.noise.subarray(0, 32);
      const ta = inner.remoteTA.key;
      if (!m.cookie || !this.cookieValid(ta, eph, m.cookie)) {
        if (m.cookie) this.stats.cookiesInvalid++;
        this.stats.retriesSent++;
        this.stats.packetsOut++;
        inner.send(encodeRetry(this.makeCookie(this.cookieSecrets()[0]!, ta, eph)));
        return;
      }
      this.unbound.delete(inner);
      const edge = new SecureEdge(this.host, inner);
      this.pending.set(inner, edge);
      edge._respond(m.noise);
    } catch (e) {
      if (e instanceof WireError) this.stats.malformed++;
      else this.stats.handlerErrors++;
    }
  }

  private cookieSecrets(): Buffer[] {
    const period = Math.floor(this.o.clock.now() / COOKIE_ROTATE_MS);
    if (period !== this.cookie.period) {
      const prev = period === this.cookie.period + 1 ? this.cookie.cur : undefined;
      if (prev !== this.cookie.cur) wipe(this.cookie.cur);
      wipe(this.cookie.prev);
      this.cookie = { period, cur: Buffer.from(this.o.random.bytes(32)), prev };
    }
    return this.cookie.prev ? [this.cookie.cur!, this.cookie.prev] : [this.cookie.cur!];
  }

  private makeCookie(secret: Uint8Array, ta: string, eph: Uint8Array): Uint8Array {
    return hmacSha256(secret, Buffer.from(ta, 'utf8'), Uint8Array.of(0), eph).subarray(0, COOKIE_LEN);
  }

  private cookieValid(ta: string, eph: Uint8Array, cookie: Uint8Array): boolean {
    let ok = false;
    for (const s of this.cookieSecrets()) ok = bytesEqual(this.makeCookie(s, ta, eph), cookie) || ok;
    return ok;
  }

  private onEstablished(e: SecureEdge): void {
    this.initiating.delete(e);
    this.pending.delete(e.inner);
    this.live.add(e);
    this.log.debug(`secure edge ${e.id} to ${e.remoteTA} established with ${e.peer.address}`);
    if (e.inbound) {
      try { this.onEdge(e); } catch { this.stats.handlerErrors++; }
    }
  }

  private onFailed(e: SecureEdge, kind: FailureKind, reason: string): void {
    this.initiating.delete(e);
    this.pending.delete(e.inner);
    this.stats.handshakesFailed[kind] = (this.stats.handshakesFailed[kind] ?? 0) + 1;
    const line = `secure handshake ${e.inbound ? 'from' : 'to'} ${e.remoteTA} failed: ${reason}`;
    // The kind is brunet_secure_failures_total's reason label (handshake_<kind>).
    const fields = { failure: kind };
    if (kind === 'closed') this.log.info(line, fields);
    else this.log.warn(line, fields);
  }
}
