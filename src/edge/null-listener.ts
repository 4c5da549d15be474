// NullSecureEdgeListener: FOR THE SIMULATOR ONLY. It has the SecureEdgeListener's interface
// and sends the same packets (HELLO → RETRY → HELLO+cookie → REPLY → FINISH → CONFIRM, then
// DATA with the 10-byte header and a 16-byte tag, retransmits on the same schedule), framed by
// the same secure-wire.ts code and of the same sizes, so message and byte counts match a run
// with security on. But it does no key exchange, no signature and no AEAD: the "tag" is 16
// zero bytes, the cookie is not checked, and the peer's node address is whatever it claims
// in its identity payload. It authenticates nothing and must never carry real traffic:
// no NodeConfig field or CLI flag of the shipped commands selects it (test/sim-null.test.ts
// checks that only the simulator and tests import it).
//
// Identity payload (secure-wire encodeIdentity): the "public key" is the claimed 20-byte
// address followed by 12 zero bytes, the "signature" 64 zero bytes.
import { Address, ADDRESS_BYTES } from '../address/address.js';
import type { Edge, EdgeListener } from '../transport/edge.js';
import type { TaKind, TransportAddress } from '../transport/ta.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { WireError } from '../wire/value.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS } from './secure-listener.js';
import { HandshakeFailure, newSecureStats, type FailureKind, type PeerInfo, type SecureStats } from './secure-types.js';
import {
  COOKIE_LEN, DATA_HEADER, NOISE_MSG1_LEN, T_CONFIRM, T_DATA, T_FINISH, T_HELLO, T_REPLY, T_RETRY,
  decodeDataHeader, decodeHandshake, decodeIdentity, encodeHello, encodeIdentity, encodeNoise, encodeRetry,
  isTransportType, writeDataHeader, type HandshakePacket,
} from './secure-wire.js';

export interface NullListenerOptions {
  /** The node address this side claims (taken as-is by the peer). */
  address: Address;
  clock: Clock;
  handshakeTimeoutMs?: number;
}

const TAG = 16;
/** Sizes of what Noise would put around the identity payload: REPLY e + encrypted s, FINISH encrypted s. */
const REPLY_PREFIX = 32 + 32 + TAG, FINISH_PREFIX = 32 + TAG;
const FIRST_RETRANSMIT_MS = 250;
const MAX_RETRIES_HONOURED = 3;
const NULL_HELLO = new Uint8Array(NOISE_MSG1_LEN);
const NULL_COOKIE = new Uint8Array(COOKIE_LEN);

function nullMessage(prefix: number, address: Address): Uint8Array {
  const key = new Uint8Array(32);
  key.set(address.bytes);
  const id = encodeIdentity({ publicKey: key, signature: new Uint8Array(64), certificate: undefined });
  const out = new Uint8Array(prefix + id.length + TAG);
  out.set(id, prefix);
  return out;
}

function claimedPeer(noise: Uint8Array, prefix: number): PeerInfo {
  if (noise.length < prefix + TAG) throw new WireError('null handshake message truncated');
  const id = decodeIdentity(noise.subarray(prefix, noise.length - TAG));
  return new NullPeer(Address.fromBytes(id.publicKey.subarray(0, ADDRESS_BYTES)));
}

/**
 * The claimed peer. Its "public key" (the address and 12 zero bytes) is made when asked for:
 * kept per edge, the 32-byte array cost about 3 KB per simulated node, and the simulator's
 * nodes never ask.
 */
class NullPeer implements PeerInfo {
  constructor(readonly address: Address) {}
  get publicKey(): Uint8Array {
    const key = new Uint8Array(32);
    key.set(this.address.bytes);
    return key;
  }
}

export class NullSecureEdge implements Edge {
  readonly id: string;
  readonly kind: TaKind;
  readonly localTA: TransportAddress;
  readonly remoteTA: TransportAddress;
  readonly inbound: boolean;
  onPacket: (packet: Uint8Array, edge: Edge) => void = () => {};
  onClose: (edge: Edge, reason: string) => void = () => {};
  private state: 'hello' | 'reply' | 'finish' | 'established' | 'closed' = 'hello';
  private peerInfo: PeerInfo | undefined;
  private lastSent: Uint8Array | undefined;
  private counter = 0;
  private retries = 0;
  private timers: TimerHandle[] = [];
  private early: Uint8Array[] | undefined;
  private settle: { resolve(e: NullSecureEdge): void; reject(err: Error): void } | undefined;

  constructor(private readonly l: NullSecureEdgeListener, readonly inner: Edge) {
    this.id = `null/${inner.id}`;
    this.kind = inner.kind;
    this.localTA = inner.localTA;
    this.remoteTA = inner.remoteTA;
    this.inbound = inner.inbound;
    inner.onPacket = (p) => this.receive(p);
    inner.onClose = (_e, reason) => this.innerClosed(reason);
  }

  get closed(): boolean { return this.state === 'closed'; }
  get established(): boolean { return this.state === 'established'; }
  get peer(): PeerInfo {
    if (!this.peerInfo) throw new Error(`${this.id}: peer not known yet`);
    return this.peerInfo;
  }

  send(packet: Uint8Array): void {
    if (this.state !== 'established') { this.l.stats.sendErrors++; return; }
    this.out(this.frame(T_DATA, packet));
  }

  close(reason = 'closed'): void {
    if (this.state === 'closed') return;
    if (this.state !== 'established') { this.fail(`closed locally: ${reason}`, 'closed'); return; }
    this.state = 'closed';
    this.l._closed(this);
    this.inner.close(reason);
    this.call(() => this.onClose(this, reason));
  }

  /** @internal Initiator: HELLO without a cookie; resolves once the responder confirmed. */
  _initiate(): Promise<NullSecureEdge> {
    return new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
      this.timers.push(this.l.clock.setTimeout(() => this.fail('timed out', 'timeout'), this.l.timeoutMs));
      this.sendHandshake(encodeHello(undefined, NULL_HELLO));
    });
  }

  /** @internal Responder: the listener saw a HELLO with a cookie. */
  _respond(): void {
    this.state = 'finish';
    this.timers.push(this.l.clock.setTimeout(() => this.fail('timed out waiting for message 3', 'timeout'), this.l.timeoutMs));
    this.sendHandshake(encodeNoise(T_REPLY, this.l.reply));
  }

  private receive(p: Uint8Array): void {
    const st = this.l.stats;
    st.packetsIn++;
    try {
      if (this.state === 'closed') return;
      if (isTransportType(p[0])) return this.receiveTransport(p);
      this.onHandshake(decodeHandshake(p));
    } catch (e) {
      if (e instanceof WireError) st.malformed++;
      else st.handlerErrors++;
    }
  }

  private receiveTransport(p: Uint8Array): void {
    const h = decodeDataHeader(p);
    if (this.state === 'finish' && !this.inbound) {
      this.early = [];
      this.becomeEstablished();
      this.l.clock.setTimeout(() => {
        const q = this.early ?? [];
        this.early = undefined;
        for (const pt of q) if (this.state === 'established') this.deliver(pt);
      }, 0);
    }
    if (this.state !== 'established') { this.l.stats.malformed++; return; }
    if (h.type !== T_DATA) return;
    // A view, not a copy: the transport below hands each receiver a buffer of its own.
    const pt = p.subarray(DATA_HEADER, p.length - TAG);
    if (this.early) this.early.push(pt);
    else this.deliver(pt);
  }

  private onHandshake(m: HandshakePacket): void {
    if (this.state === 'established') {
      if (m.type === T_FINISH && this.inbound) { this.l.stats.retransmits++; this.out(this.frame(T_CONFIRM, new Uint8Array(0))); }
      return;
    }
    if (m.type === T_RETRY && !this.inbound && this.state === 'hello' && this.retries < MAX_RETRIES_HONOURED) {
      this.retries++;
      this.sendHandshake(encodeHello(NULL_COOKIE, NULL_HELLO));
    } else if (m.type === T_REPLY && !this.inbound && this.state === 'hello') {
      this.peerInfo = claimedPeer(m.noise, REPLY_PREFIX);
      this.state = 'finish';
      this.sendHandshake(encodeNoise(T_FINISH, this.l.finish));
    } else if (m.type === T_FINISH && this.inbound && this.state === 'finish') {
      this.peerInfo = claimedPeer(m.noise, FINISH_PREFIX);
      this.out(this.frame(T_CONFIRM, new Uint8Array(0)));
      this.becomeEstablished();
    } else if (m.type === T_HELLO && this.inbound && this.lastSent) {
      this.l.stats.retransmits++;
      this.out(this.lastSent);
    }
  }

  /** The DATA/CONFIRM framing of secure-wire.ts, with 16 zero bytes where the AEAD tag goes. */
  private frame(type: typeof T_DATA | typeof T_CONFIRM, pt: Uint8Array): Uint8Array {
    const out = new Uint8Array(DATA_HEADER + pt.length + TAG);
    writeDataHeader(out, { type, epoch: 0, counter: this.counter++ });
    out.set(pt, DATA_HEADER);
    return out;
  }

  private sendHandshake(p: Uint8Array): void {
    this.lastSent = p;
    this.out(p);
    if (!this.inbound) this.scheduleRetransmit(FIRST_RETRANSMIT_MS);
  }

  private scheduleRetransmit(ms: number): void {
    this.timers.push(this.l.clock.setTimeout(() => {
      if (this.state === 'established' || this.state === 'closed' || !this.lastSent) return;
      this.l.stats.retransmits++;
      this.out(this.lastSent);
      this.scheduleRetransmit(ms * 2);
    }, ms));
  }

  private out(p: Uint8Array): void {
    this.l.stats.packetsOut++;
    this.inner.send(p);
  }

  private cancelTimers(): void {
    for (const t of this.timers) t.cancel();
    this.timers = [];
  }

  private becomeEstablished(): void {
    this.state = 'established';
    this.cancelTimers();
    this.lastSent = undefined;
    this.l.stats.handshakesOk++;
    this.l._established(this);
    this.settle?.resolve(this);
    this.settle = undefined;
  }

  private fail(reason: string, kind: FailureKind): void {
    if (this.state === 'established' || this.state === 'closed') return;
    this.state = 'closed';
    this.cancelTimers();
    this.l._failed(this, kind);
    this.inner.close(`null handshake failed: ${reason}`);
    this.settle?.reject(new HandshakeFailure(`handshake with ${this.remoteTA}: ${reason}`, kind));
    this.settle = undefined;
  }

  private innerClosed(reason: string): void {
    if (this.state !== 'established') return this.fail(`connection closed during handshake: ${reason}`, 'closed');
    this.state = 'closed';
    this.l._closed(this);
    this.call(() => this.onClose(this, reason));
  }

  private deliver(pt: Uint8Array): void { this.call(() => this.onPacket(pt, this)); }

  private call(fn: () => void): void {
    try { fn(); } catch { this.l.stats.handlerErrors++; }
  }
}

export class NullSecureEdgeListener implements EdgeListener {
  readonly stats: SecureStats = newSecureStats();
  onEdge: (edge: Edge) => void = () => {};
  readonly clock: Clock;
  readonly timeoutMs: number;
  /** Our REPLY and FINISH bodies (constant: nothing in them depends on the handshake). */
  readonly reply: Uint8Array;
  readonly finish: Uint8Array;
  private readonly handshaking = new Set<NullSecureEdge>();
  private readonly live = new Set<NullSecureEdge>();
  private readonly unbound = new Map<Edge, TimerHandle>();
  private running = false;

  constructor(readonly inner: EdgeListener, o: NullListenerOptions) {
    this.clock = o.clock;
    this.timeoutMs = o.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.reply = nullMessage(REPLY_PREFIX, o.address);
    this.finish = nullMessage(FINISH_PREFIX, o.address);
    inner.onEdge = (e) => this.onInnerEdge(e);
  }

  get kind(): TaKind { return this.inner.kind; }
  localTAs(): TransportAddress[] { return this.inner.localTAs(); }
  get edgeCount(): number { return this.live.size; }
  get securityAssociations(): number { return this.live.size; }
  get wrappedEdges(): number { return this.live.size + this.handshaking.size; }

  async start(): Promise<void> {
    await this.inner.start();
    this.running = true;
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const e of [...this.handshaking, ...this.live]) e.close('listener stopped');
    for (const [e, t] of [...this.unbound]) { t.cancel(); e.close('listener stopped'); }
    this.unbound.clear();
    await this.inner.stop();
  }

  async createEdge(ta: TransportAddress): Promise<NullSecureEdge> {
    if (!this.running) throw new Error(`null-secure ${this.kind} listener not started`);
    const edge = new NullSecureEdge(this, await this.inner.createEdge(ta));
    this.handshaking.add(edge);
    return edge._initiate();
  }

  private onInnerEdge(inner: Edge): void {
    if (!this.running) { inner.close('null-secure listener not running'); return; }
    this.unbound.set(inner, this.clock.setTimeout(() => {
      if (this.unbound.delete(inner)) inner.close('no secure handshake');
    }, this.timeoutMs));
    inner.onPacket = (p) => this.onUnboundPacket(inner, p);
    inner.onClose = () => { this.unbound.get(inner)?.cancel(); this.unbound.delete(inner); };
  }

  /** As the secure listener: a HELLO without a cookie gets a RETRY, one with a cookie a responder. */
  private onUnboundPacket(inner: Edge, p: Uint8Array): void {
    this.stats.packetsIn++;
    try {
      const m = decodeHandshake(p);
      if (m.type !== T_HELLO) { this.stats.malformed++; return; }
      if (!m.cookie) {
        this.stats.retriesSent++;
        this.stats.packetsOut++;
        inner.send(encodeRetry(NULL_COOKIE));
        return;
      }
      this.unbound.get(inner)?.cancel();
      this.unbound.delete(inner);
      const edge = new NullSecureEdge(this, inner);
      this.handshaking.add(edge);
      edge._respond();
    } catch (e) {
      if (e instanceof WireError) this.stats.malformed++;
      else this.stats.handlerErrors++;
    }
  }

  /** @internal */
  _established(e: NullSecureEdge): void {
    this.handshaking.delete(e);
    this.live.add(e);
    if (e.inbound) {
      try { this.onEdge(e); } catch { this.stats.handlerErrors++; }
    }
  }

  /** @internal */
  _failed(e: NullSecureEdge, kind: FailureKind): void {
    this.handshaking.delete(e);
    this.stats.handshakesFailed[kind] = (this.stats.handshakesFailed[kind] ?? 0) + 1;
  }

  /** @internal */
  _closed(e: NullSecureEdge): void { this.live.delete(e); }
}
