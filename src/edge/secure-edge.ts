// SecureEdge: one inner Edge wrapped in a Noise_XXpsk3 handshake and an AEAD session.
// Layers above see a plain Edge whose send()/onPacket carry plaintext, plus `peer`, the
// authenticated identity of the far end.
//
// Initiator: HELLO → (RETRY → HELLO+cookie) → REPLY → FINISH → waits for CONFIRM (or the
// first DATA). Waiting for the confirmation means a peer that lacks the group key, or
// refuses us, makes createEdge() fail instead of yielding an edge that silently eats
// packets. Handshake messages are retransmitted (250 ms, doubling) until the deadline.
// Responder (created by the listener only after the HELLO's cookie checked out): REPLY,
// then FINISH → CONFIRM, answering retransmitted HELLO/FINISH with the same reply.
// Refusals travel in ABORT packets sealed with keys from the transcript after message 2,
// so only the real peer of this handshake can make us give up early.
import type { Edge, Room } from '../transport/edge.js';
import type { TaKind, TransportAddress } from '../transport/ta.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { WireError } from '../wire/value.js';
import { HandshakeState } from './handshake.js';
import { addressOf, verifySignature, type Identity } from './identity.js';
import { aeadDecrypt, aeadEncrypt, bytesEqual, TAG_LEN } from './primitives.js';
import {
  ABORT_AUTH, ABORT_IDENTITY, ABORT_PROTOCOL, ABORT_REFUSED, DATA_HEADER, T_ABORT, T_CONFIRM, T_DATA, T_FINISH, T_HELLO, T_REPLY, T_RETRY,
  abortHeader, decodeHandshake, decodeIdentity, encodeAbort, encodeHello, encodeIdentity, encodeNoise, isTransportType,
  type HandshakePacket,
} from './secure-wire.js';
import { HandshakeFailure, type FailureKind, type PeerInfo, type SecureStats, type VerifyPeer } from './secure-types.js';
import { Session, type ReturnedState, type SessionOptions, type TransportState } from './session.js';

/** A native flow holding an edge's transport state (src/vpn/native-path.ts): it seals and opens for the edge meanwhile. */
export interface LentTransport {
  seal(type: number, plaintext: Uint8Array): Uint8Array | null;
  open(packet: Uint8Array): Uint8Array | null;
}

/** What a SecureEdge needs from its listener. */
export interface SecureEdgeHost {
  readonly identity: Identity;
  readonly psk: Uint8Array;
  readonly prologue: Uint8Array;
  readonly certificate: Uint8Array | undefined;
  readonly clock: Clock;
  readonly verifyPeer: VerifyPeer | undefined;
  readonly handshakeTimeoutMs: number;
  readonly sessionOptions: SessionOptions;
  readonly stats: SecureStats;
  readonly log: Logger;
  established(e: SecureEdge): void;
  failed(e: SecureEdge, kind: FailureKind, reason: string): void;
  closed(e: SecureEdge): void;
}

const FIRST_RETRANSMIT_MS = 250;
const MAX_RETRIES_HONOURED = 3;
const EMPTY = new Uint8Array(0);
const HELLO_HINT = ' (peer rejected our hello: different namespace or protocol version?)';
// Domain separation: this key may sign other things later (certificates, records).
export const SIG_LABEL = new TextEncoder().encode('brunet-ts secure-edge identity v1\0');
const utf8 = new TextEncoder();
const utf8d = new TextDecoder();

export class SecureEdge implements Edge {
  readonly id: string;
  readonly kind: TaKind;
  readonly localTA: TransportAddress;
  readonly remoteTA: TransportAddress;
  readonly inbound: boolean;
  onPacket: (packet: Uint8Array, edge: Edge) => void = () => {};
  onClose: (edge: Edge, reason: string) => void = () => {};

  private state: 'handshake' | 'established' | 'closed' = 'handshake';
  private readonly hs: HandshakeState;
  private session: Session | undefined;
  private peerInfo: PeerInfo | undefined;
  private lastSent: Uint8Array | undefined;
  private hello: Uint8Array | undefined;
  private finish: Uint8Array | undefined;
  private retriesHonoured = 0;
  private deadline: TimerHandle | undefined;
  private retransmit: TimerHandle | undefined;
  private early: Uint8Array[] | undefined;
  private settle: { resolve(e: SecureEdge): void; reject(err: Error): void } | undefined;
  private lent: LentTransport | undefined;

  constructor(private readonly host: SecureEdgeHost, readonly inner: Edge) {
    this.id = `secure/${inner.id}`;
    this.kind = inner.kind;
    this.localTA = inner.localTA;
    this.remoteTA = inner.remoteTA;
    this.inbound = inner.inbound;
    this.hs = new HandshakeState({ initiator: !inner.inbound, prologue: host.prologue, s: host.identity.x25519, psk: host.psk });
    inner.onPacket = (p) => this.receive(p);
    inner.onClose = (_e, reason) => this.innerClosed(reason);
  }

  get closed(): boolean { return this.state === 'closed'; }
  get established(): boolean { return this.state === 'established'; }
  /** The authenticated far end; known once the edge is established. */
  get peer(): PeerInfo {
    if (!this.peerInfo) throw new Error(`${this.id}: peer not authenticated yet`);
    return this.peerInfo;
  }
  /** Current send epoch and counter, for tests and diagnostics. */
  get sendState(): { epoch: number; counter: number } | undefined { return this.session?.sendState; }

  send(packet: Uint8Array): void {
    const st = this.host.stats;
    if (this.state !== 'established' || !this.session) { st.sendErrors++; return; }
    let out: Uint8Array | null;
    try { out = this.lent ? this.lent.seal(T_DATA, packet) : this.session.seal(T_DATA, packet); } catch { st.sendErrors++; return; }
    if (!out) { st.sendErrors++; return; }
    this.out(out);
  }

  /**
   * Hands the session's transport state to a native flow, which then seals and opens for this
   * edge (one counter, one replay window) until returnTransport. undefined, and nothing lent:
   * not established, already lent, or the previous epoch's key is still in its grace period.
   */
  lendTransport(flow: LentTransport): TransportState | undefined {
    if (this.state !== 'established' || !this.session || this.lent || this.session.inGrace) return undefined;
    this.lent = flow;
    return this.session.transportState();
  }

  /** Takes the transport state back from the flow (undefined: it had none left to give: the session stays as lent). */
  returnTransport(state: ReturnedState | undefined): void {
    this.lent = undefined;
    if (state) this.session?.restoreTransportState(state);
  }

  /** A DATA packet's plaintext that the flow authenticated and opened. */
  receiveOpened(plaintext: Uint8Array): void {
    this.host.stats.packetsIn++;
    if (this.state === 'established') this.deliver(plaintext);
  }

  /** send() sealing in place: the header goes into the lent room in front, the tag behind (Edge.sendLent). */
  sendLent(packet: Uint8Array, room: Room): void {
    if (room.head < DATA_HEADER || room.tail < TAG_LEN || this.lent) { this.send(packet); return; }
    const st = this.host.stats;
    if (this.state !== 'established' || !this.session) { st.sendErrors++; return; }
    let out: Uint8Array;
    try { out = this.session.sealInPlace(T_DATA, packet); } catch { st.sendErrors++; return; }
    const head = room.head - DATA_HEADER, tail = room.tail - TAG_LEN;
    this.host.stats.packetsOut++;
    if (this.inner.sendLent) this.inner.sendLent(out, { head, tail });
    else this.inner.send(out);
  }

  close(reason = 'closed'): void {
    if (this.state === 'closed') return;
    if (this.state === 'handshake') { this.fail('closed', `closed locally: ${reason}`); return; }
    this.state = 'closed';
    this.session?.destroy();
    this.host.closed(this);
    this.inner.close(reason);
    this.callHandler(() => this.onClose(this, reason));
  }

  /** @internal Initiator: sends HELLO; resolves once the responder confirmed. */
  _initiate(): Promise<SecureEdge> {
    return new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
      this.armTimers();
      try { this.hello = this.hs.writeMessage(EMPTY); } catch (e) { return this.fail('protocol', (e as Error).message); }
      this.sendHandshake(encodeHello(undefined, this.hello));
    });
  }

  /** @internal Responder: the listener verified this HELLO's cookie. */
  _respond(noise1: Uint8Array): void {
    this.hello = noise1;
    this.armTimers();
    // Message 1's (empty) payload is sealed under a key bound to the prologue, so a peer
    // with another namespace or protocol version fails here.
    try { this.hs.readMessage(noise1); } catch { return this.fail('protocol', 'invalid hello (different namespace or protocol version?)'); }
    let reply: Uint8Array;
    try { reply = this.hs.writeMessage((h) => this.identityPayload(h)); } catch (e) { return this.fail('protocol', (e as Error).message); }
    this.sendHandshake(encodeNoise(T_REPLY, reply));
  }

  private receive(p: Uint8Array): void {
    const st = this.host.stats;
    st.packetsIn++;
    try {
      if (this.state === 'closed') return;
      if (isTransportType(p[0])) return this.receiveTransport(p);
      this.onHandshake(decodeHandshake(p));
    } catch (e) {
      if (e instanceof WireError) st.malformed++;
      else { st.handlerErrors++; this.host.log.debug(`${this.id}: receive error: ${(e as Error).message}`); }
    }
  }

  private receiveTransport(p: Uint8Array): void {
    if (!this.session) { this.host.stats.malformed++; return; }
    if (this.lent) {  // a packet the flow did not see (reassembled from fragments): it opens it
      const pt = this.lent.open(p);
      if (pt && this.state === 'established') this.deliver(pt);
      return;
    }
    // The inner edge hands each packet to us alone: decrypt it where it lies.
    const o = this.session.openInPlace(p);
    if (!o) return;
    if (this.state === 'handshake') {
      // Initiator: the first authentic transport packet is the responder's confirmation.
      this.early = [];
      this.becomeEstablished();
      // Let the caller's `await createEdge()` attach onPacket before early data arrives.
      this.host.clock.setTimeout(() => {
        const q = this.early ?? [];
        this.early = undefined;
        for (const pt of q) if (this.state === 'established') this.deliver(pt);
      }, 0);
    }
    if (o.type !== T_DATA) return;
    if (this.early) this.early.push(o.plaintext);
    else this.deliver(o.plaintext);
  }

  private onHandshake(m: HandshakePacket): void {
    const initiator = !this.inbound;
    if (this.state === 'established') {
      // Our CONFIRM was lost and the initiator resent FINISH: confirm again.
      if (m.type === T_FINISH && this.finish && bytesEqual(m.noise, this.finish)) this.sendConfirm(true);
      return;
    }
    switch (m.type) {
      case T_RETRY:
        if (!initiator || this.hs.messageIndex !== 1 || this.retriesHonoured >= MAX_RETRIES_HONOURED) return;
        this.retriesHonoured++;
        this.sendHandshake(encodeHello(m.cookie, this.hello!));
        return;
      case T_REPLY:
        if (initiator && this.hs.messageIndex === 1) this.onReply(m.noise);
        return;
      case T_FINISH:
        if (!initiator && this.hs.messageIndex === 2) this.onFinish(m.noise);
        return;
      case T_HELLO:
        // Our REPLY was lost: answer the identical HELLO with the identical REPLY.
        if (!initiator && this.lastSent && bytesEqual(m.noise, this.hello!)) this.resend();
        return;
      case T_ABORT:
        this.onAbort(m.code, m.header, m.sealed);
        return;
    }
  }

  private onReply(noise: Uint8Array): void {
    let r: { payload: Uint8Array; h: Uint8Array };
    try { r = this.hs.readMessage(noise); } catch { return this.fail('auth', 'authentication failed: invalid handshake reply'); }
    const peer = this.checkIdentity(r.payload, r.h);
    if (!peer) return;
    let msg3: Uint8Array;
    try { msg3 = this.hs.writeMessage((h) => this.identityPayload(h)); } catch (e) { return this.fail('protocol', (e as Error).message); }
    this.peerInfo = peer;
    this.session = new Session(this.hs.split(), this.host.sessionOptions, this.host.stats);
    this.sendHandshake(encodeNoise(T_FINISH, msg3));
  }

  private onFinish(noise: Uint8Array): void {
    let r: { payload: Uint8Array; h: Uint8Array };
    try { r = this.hs.readMessage(noise); } catch {
      this.abortPeer(ABORT_AUTH, 'authentication failed');
      return this.fail('auth', 'authentication failed: message 3 did not decrypt (different group key?)');
    }
    const peer = this.checkIdentity(r.payload, r.h);
    if (!peer) return;
    this.peerInfo = peer;
    this.finish = noise;
    this.session = new Session(this.hs.split(), this.host.sessionOptions, this.host.stats);
    this.sendConfirm(false);
    this.becomeEstablished();
  }

  /** Verifies the identity payload; on failure tells the peer, fails, and returns undefined. */
  private checkIdentity(payload: Uint8Array, h: Uint8Array): PeerInfo | undefined {
    let id;
    try { id = decodeIdentity(payload); } catch (e) {
      this.abortPeer(ABORT_PROTOCOL, 'malformed identity payload');
      this.fail('protocol', `malformed identity payload: ${(e as Error).message}`);
      return undefined;
    }
    const signed = Buffer.concat([SIG_LABEL, h, this.hs.remoteStatic!]);
    if (!verifySignature(id.publicKey, signed, id.signature)) {
      this.abortPeer(ABORT_IDENTITY, 'identity signature invalid');
      this.fail('identity', 'authentication failed: identity signature invalid');
      return undefined;
    }
    const info: PeerInfo = id.certificate
      ? { address: addressOf(id.publicKey), publicKey: id.publicKey, certificate: id.certificate }
      : { address: addressOf(id.publicKey), publicKey: id.publicKey };
    let refusal: string | null;
    try { refusal = this.host.verifyPeer?.(info) ?? null; } catch (e) { refusal = `verifyPeer threw: ${(e as Error).message}`; }
    if (refusal !== null) {
      this.abortPeer(ABORT_REFUSED, refusal);
      this.fail('refused', `peer refused: ${refusal}`);
      return undefined;
    }
    return info;
  }

  private identityPayload(h: Uint8Array): Uint8Array {
    const me = this.host.identity;
    return encodeIdentity({
      publicKey: me.publicKey,
      signature: me.sign(Buffer.concat([SIG_LABEL, h, me.x25519.publicKey])),
      certificate: this.host.certificate,
    });
  }

  /** Seals a refusal under this direction's abort key (one ABORT per handshake, nonce 0). */
  private abortPeer(code: number, reason: string): void {
    const keys = this.hs.abortKeys;
    if (!keys) return;
    const header = abortHeader(code);
    const sealed = aeadEncrypt(this.inbound ? keys[1] : keys[0], 0, header, utf8.encode(reason.slice(0, 200)));
    this.out(encodeAbort(code, sealed));
  }

  private onAbort(code: number, header: Uint8Array, sealed: Uint8Array): void {
    const keys = this.hs.abortKeys;
    if (!keys) return; // cannot be authenticated yet: ignore rather than let anyone cancel us
    let reason: string;
    try { reason = utf8d.decode(aeadDecrypt(this.inbound ? keys[0] : keys[1], 0, header, sealed)); } catch {
      this.host.stats.decryptFailures++;
      return;
    }
    if (code === ABORT_AUTH) this.fail('auth', 'authentication failed: the peer could not verify our handshake (different group key?)');
    else if (code === ABORT_IDENTITY) this.fail('identity', 'authentication failed: the peer rejected our identity');
    else if (code === ABORT_REFUSED) this.fail('refused-by-peer', `refused by peer: ${reason}`);
    else this.fail('protocol', `aborted by peer: ${reason}`);
  }

  private sendConfirm(again: boolean): void {
    if (again) this.host.stats.retransmits++;
    const p = this.lent ? this.lent.seal(T_CONFIRM, EMPTY) : this.session!.seal(T_CONFIRM, EMPTY);
    if (p) this.out(p);
  }

  private sendHandshake(p: Uint8Array): void {
    this.lastSent = p;
    this.out(p);
    if (!this.inbound) this.scheduleRetransmit(FIRST_RETRANSMIT_MS);
  }

  private resend(): void {
    if (!this.lastSent) return;
    this.host.stats.retransmits++;
    this.out(this.lastSent);
  }

  private out(p: Uint8Array): void {
    this.host.stats.packetsOut++;
    this.inner.send(p);
  }

  private scheduleRetransmit(ms: number): void {
    this.retransmit?.cancel();
    this.retransmit = this.host.clock.setTimeout(() => {
      if (this.state !== 'handshake') return;
      this.resend();
      this.scheduleRetransmit(ms * 2);
    }, ms);
  }

  private armTimers(): void {
    this.deadline = this.host.clock.setTimeout(() => this.fail('timeout', this.timeoutReason()), this.host.handshakeTimeoutMs);
  }

  private timeoutReason(): string {
    const i = this.hs.messageIndex;
    if (this.inbound) return 'timed out waiting for message 3';
    if (i === 1 && this.retriesHonoured > 0) return `timed out after the cookie exchange${HELLO_HINT}`;
    if (i === 1) return 'timed out (no answer)';
    return 'timed out waiting for the peer to confirm';
  }

  private cancelTimers(): void {
    this.deadline?.cancel();
    this.retransmit?.cancel();
    this.deadline = this.retransmit = undefined;
  }

  private becomeEstablished(): void {
    this.state = 'established';
    this.cancelTimers();
    this.hs.destroy();
    this.lastSent = this.hello = undefined;
    this.host.stats.handshakesOk++;
    this.host.established(this);
    this.settle?.resolve(this);
    this.settle = undefined;
  }

  private fail(kind: FailureKind, reason: string): void {
    if (this.state !== 'handshake') return;
    this.state = 'closed';
    this.cancelTimers();
    this.hs.destroy();
    this.session?.destroy();
    this.host.failed(this, kind, reason);
    this.inner.close(`secure handshake failed: ${reason}`);
    this.settle?.reject(new HandshakeFailure(`handshake with ${this.remoteTA}: ${reason}`, kind));
    this.settle = undefined;
  }

  private innerClosed(reason: string): void {
    if (this.state === 'handshake') {
      // A responder closes the edge when it cannot read our HELLO; say what that usually means.
      const hint = !this.inbound && this.hs.messageIndex === 1 && this.retriesHonoured > 0 ? HELLO_HINT : '';
      return this.fail('closed', `connection closed during handshake: ${reason}${hint}`);
    }
    if (this.state !== 'established') return;
    this.state = 'closed';
    this.session?.destroy();
    this.host.closed(this);
    this.callHandler(() => this.onClose(this, reason));
  }

  private deliver(pt: Uint8Array): void {
    this.callHandler(() => this.onPacket(pt, this));
  }

  private callHandler(fn: () => void): void {
    try { fn(); } catch { this.host.stats.handlerErrors++; }
  }
}
