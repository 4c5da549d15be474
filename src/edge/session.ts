// Transport phase of a secure edge: per-direction ChaCha20-Poly1305 keys from Noise
// Split(), an explicit 64-bit counter per packet (UDP reorders and drops, so the receiver
// cannot keep an implicit nonce), a sliding replay window, and one-way rekeying.
//
// Rekeying is sender-driven: after rekeyAfterPackets packets or rekeyAfterMs in an epoch
// the sender derives K' = HKDF(K, "rekey") and bumps the epoch byte, restarting its
// counter at 0 (a fresh key, so no nonce ever repeats under one key). The receiver
// switches to epoch e+1 only after a packet of that epoch authenticates, and keeps epoch
// e for graceMs so packets still in flight decrypt. Old keys are wiped: a key compromised
// later does not reveal earlier epochs' traffic.
//
// Nothing in open() throws: every bad packet is counted in stats and dropped.
import type { Clock } from '../util/clock.js';
import { uninitialized } from '../util/bytes.js';
import { WireError } from '../wire/value.js';
import { defaultAead, type AeadBackend } from './aead.js';
import { TAG_LEN, aeadEncryptInto, hkdf, wipe } from './primitives.js';
import { DATA_HEADER, decodeDataHeader, writeDataHeader } from './secure-wire.js';

export const DEFAULT_REKEY_PACKETS = 2 ** 20;
export const DEFAULT_REKEY_MS = 120_000;
export const DEFAULT_GRACE_MS = 10_000;
export const REPLAY_WINDOW = 2048;
const REKEY_LABEL = new TextEncoder().encode('brunet-ts rekey');

export interface SessionOptions {
  clock: Clock;
  rekeyAfterPackets?: number;
  rekeyAfterMs?: number;
  /** How long the receiver keeps the previous epoch's key. */
  graceMs?: number;
  /** ChaCha20-Poly1305 implementation; default: the one chosen at load (aead.ts). */
  aead?: AeadBackend;
}

export interface SessionStats {
  /** Packets whose tag did not verify (tampered, truncated, wrong key). */
  decryptFailures: number;
  /** Counters already seen. */
  replays: number;
  /** Counters older than the replay window. */
  tooOld: number;
  /** Epochs we have no key for (too old, expired grace, or skipped ahead). */
  badEpoch: number;
  /** Packets that did not parse. */
  malformed: number;
  /** Send-direction key changes. */
  rekeys: number;
}

export function newSessionStats(): SessionStats {
  return { decryptFailures: 0, replays: 0, tooOld: 0, badEpoch: 0, malformed: 0, rekeys: 0 };
}

/** One-way key ratchet shared by both ends. */
export function nextEpochKey(k: Uint8Array): Buffer {
  const [out] = hkdf(k, REKEY_LABEL, 2);
  return out!;
}

/** Sliding window over the last `size` counters (bitmap indexed by counter mod size). */
export class ReplayWindow {
  private readonly bits: Uint32Array;
  private top = -1;

  constructor(readonly size = REPLAY_WINDOW) {
    if (size % 32 !== 0 || size <= 0) throw new RangeError('replay window size must be a positive multiple of 32');
    this.bits = new Uint32Array(size / 32);
  }

  get highest(): number { return this.top; }

  /** 'ok' if n has not been seen and is inside the window. Does not record it. */
  check(n: number): 'ok' | 'replay' | 'old' {
    if (n > this.top) return 'ok';
    if (this.top - n >= this.size) return 'old';
    return this.get(n) ? 'replay' : 'ok';
  }

  /** The highest counter seen (-1: none) and a copy of the bitmap (bit n % size of word n % size >>> 5). */
  snapshot(): { top: number; bits: Uint32Array } { return { top: this.top, bits: this.bits.slice() }; }

  /** Sets the window to a snapshot() (a native flow's, handed back). */
  restore(w: { top: number; bits: Uint32Array }): void {
    if (w.bits.length !== this.bits.length) throw new RangeError(`replay window: expected ${this.bits.length} words`);
    this.top = w.top;
    this.bits.set(w.bits);
  }

  /** Records n; call only after the packet authenticated. */
  mark(n: number): void {
    if (n > this.top) {
      if (n - this.top >= this.size) this.bits.fill(0);
      else for (let i = this.top + 1; i < n; i++) this.clear(i);
      this.top = n;
    }
    const i = n % this.size;
    this.bits[i >>> 5]! |= 1 << (i & 31);
  }

  private get(n: number): boolean {
    const i = n % this.size;
    return (this.bits[i >>> 5]! & (1 << (i & 31))) !== 0;
  }
  private clear(n: number): void {
    const i = n % this.size;
    this.bits[i >>> 5]! &= ~(1 << (i & 31));
  }
}

interface RecvEpoch {
  epoch: number;
  key: Buffer;
  window: ReplayWindow;
  /** Only for the previous epoch: when its grace period ends. */
  expiresAt: number;
}

/** Session.transportState(). */
export interface TransportState {
  sendKey: Uint8Array; recvKey: Uint8Array; sendEpoch: number; recvEpoch: number; sendCounter: number; sendEpochStart: number;
  recvWindow: { top: number; bits: Uint32Array }; rekeyPackets: number; rekeyMs: number; graceMs: number;
}

/** What a native flow hands back when it is removed (native-flows.ts FlowThread.take). */
export interface ReturnedEpoch { epoch: number; key: Uint8Array; window: { top: number; bits: Uint32Array }; expiresAt: number }
export interface ReturnedState { sendKey: Uint8Array; sendEpoch: number; sendCounter: number; sendEpochStart: number; cur: ReturnedEpoch; prev?: ReturnedEpoch }

export interface Opened {
  type: number;
  plaintext: Uint8Array;
}

export class Session {
  private sendKey: Buffer;
  private sendEpoch = 0;
  private sendCounter = 0;
  private sendEpochStart: number;
  private cur: RecvEpoch;
  private prev: RecvEpoch | undefined;
  private next: RecvEpoch | undefined;
  private readonly rekeyPackets: number;
  private readonly rekeyMs: number;
  private readonly graceMs: number;
  private readonly aead: AeadBackend;
  private destroyed = false;

  constructor(keys: { send: Uint8Array; recv: Uint8Array }, private readonly o: SessionOptions, readonly stats: SessionStats) {
    this.rekeyPackets = o.rekeyAfterPackets ?? DEFAULT_REKEY_PACKETS;
    this.rekeyMs = o.rekeyAfterMs ?? DEFAULT_REKEY_MS;
    this.graceMs = o.graceMs ?? DEFAULT_GRACE_MS;
    this.aead = o.aead ?? defaultAead;
    if (!(this.rekeyPackets >= 1 && this.rekeyPackets <= 2 ** 48)) throw new RangeError('rekeyAfterPackets must be in [1, 2^48]');
    if (!(this.rekeyMs > 0)) throw new RangeError('rekeyAfterMs must be positive');
    this.sendKey = Buffer.from(keys.send);
    this.sendEpochStart = o.clock.now();
    this.cur = { epoch: 0, key: Buffer.from(keys.recv), window: new ReplayWindow(), expiresAt: Infinity };
  }

  /** Current send epoch (0-255, wraps) and packets sent in it. */
  get sendState(): { epoch: number; counter: number } { return { epoch: this.sendEpoch, counter: this.sendCounter }; }
  get recvEpoch(): number { return this.cur.epoch; }

  /**
   * The transport state a native flow takes over (native-flows.ts FlowSpec): copies of the
   * current keys, the epochs, the send counter and the current receive epoch's replay window.
   * The previous epoch (in its grace period) and a derived next one are not included.
   */
  transportState(): TransportState {
    return {
      sendKey: new Uint8Array(this.sendKey), recvKey: new Uint8Array(this.cur.key), sendEpoch: this.sendEpoch, recvEpoch: this.cur.epoch,
      sendCounter: this.sendCounter, sendEpochStart: this.sendEpochStart, recvWindow: this.cur.window.snapshot(),
      rekeyPackets: this.rekeyPackets, rekeyMs: this.rekeyMs, graceMs: this.graceMs,
    };
  }

  /** True while the previous receive epoch is kept (its grace period): transportState() leaves it out. */
  get inGrace(): boolean { return this.prev !== undefined && this.o.clock.now() < this.prev.expiresAt; }

  /**
   * Takes back the state a native flow advanced (its keys, counters, epochs and windows)
   * after transportState() handed it over; the caller's copies are taken, not wiped.
   */
  restoreTransportState(r: ReturnedState): void {
    if (this.destroyed) return;
    wipe(this.sendKey);
    wipe(this.cur.key);
    wipe(this.prev?.key);
    wipe(this.next?.key);
    this.sendKey = Buffer.from(r.sendKey);
    this.sendEpoch = r.sendEpoch & 0xff;
    this.sendCounter = r.sendCounter;
    this.sendEpochStart = r.sendEpochStart;
    const epoch = (e: ReturnedEpoch, expiresAt: number): RecvEpoch => {
      const window = new ReplayWindow();
      window.restore(e.window);
      return { epoch: e.epoch & 0xff, key: Buffer.from(e.key), window, expiresAt };
    };
    this.cur = epoch(r.cur, Infinity);
    this.prev = r.prev ? epoch(r.prev, r.prev.expiresAt) : undefined;
    this.next = undefined;
  }

  /**
   * Builds a DATA/CONFIRM packet: one new buffer, the header written in front and the
   * plaintext encrypted straight into it behind. The caller keeps plaintext (it is only
   * read) and owns the returned packet.
   */
  seal(type: number, plaintext: Uint8Array): Uint8Array {
    const counter = this.nextCounter();
    const out = uninitialized(DATA_HEADER + plaintext.length + TAG_LEN); // every byte is written below
    writeDataHeader(out, { type, epoch: this.sendEpoch, counter });
    aeadEncryptInto(this.sendKey, counter, out.subarray(0, DATA_HEADER), plaintext, out, DATA_HEADER, this.aead);
    return out;
  }

  /**
   * seal() without a new buffer, for a caller that gives plaintext away with DATA_HEADER
   * bytes free in front of it and TAG_LEN behind (in its own buffer): the header goes in
   * front, the plaintext is encrypted where it lies and the tag written behind. Returns the
   * packet, a view over plaintext's buffer. Same bytes on the wire as seal().
   */
  sealInPlace(type: number, plaintext: Uint8Array): Uint8Array {
    if (plaintext.byteOffset < DATA_HEADER || plaintext.byteOffset + plaintext.length + TAG_LEN > plaintext.buffer.byteLength) {
      throw new RangeError('no room around the plaintext for a transport header and tag');
    }
    const counter = this.nextCounter();
    const out = new Uint8Array(plaintext.buffer, plaintext.byteOffset - DATA_HEADER, DATA_HEADER + plaintext.length + TAG_LEN);
    writeDataHeader(out, { type, epoch: this.sendEpoch, counter });
    aeadEncryptInto(this.sendKey, counter, out.subarray(0, DATA_HEADER), plaintext, out, DATA_HEADER, this.aead);
    return out;
  }

  /** The counter for the next packet, after a rekey if one is due. */
  private nextCounter(): number {
    if (this.destroyed) throw new Error('session destroyed');
    const now = this.o.clock.now();
    if (this.sendCounter >= this.rekeyPackets || now - this.sendEpochStart >= this.rekeyMs) {
      const k = nextEpochKey(this.sendKey);
      wipe(this.sendKey);
      this.sendKey = k;
      this.sendEpoch = (this.sendEpoch + 1) & 0xff;
      this.sendCounter = 0;
      this.sendEpochStart = now;
      this.stats.rekeys++;
    }
    return this.sendCounter++;
  }

  /**
   * Authenticates and decrypts into a new buffer, leaving packet as it was; null (and a
   * stats count) for anything unacceptable.
   */
  open(packet: Uint8Array): Opened | null {
    return this.openPacket(packet, false);
  }

  /**
   * Like open(), but decrypts in place, for a receiver that owns packet (a transport hands
   * each received packet to exactly one onPacket and never touches it again): on success
   * the plaintext is a view into packet, whose bytes after the header it overwrote. A
   * packet rejected before decryption (malformed, replayed, unknown epoch) is left as it
   * was; one whose tag does not verify has its ciphertext zeroed.
   */
  openInPlace(packet: Uint8Array): Opened | null {
    return this.openPacket(packet, true);
  }

  private openPacket(packet: Uint8Array, inPlace: boolean): Opened | null {
    if (this.destroyed) return null;
    let h;
    try { h = decodeDataHeader(packet); } catch (e) {
      if (e instanceof WireError) { this.stats.malformed++; return null; }
      throw e;
    }
    const now = this.o.clock.now();
    if (this.prev && now >= this.prev.expiresAt) { wipe(this.prev.key); this.prev = undefined; }
    let st: RecvEpoch | undefined;
    if (h.epoch === this.cur.epoch) st = this.cur;
    else if (h.epoch === ((this.cur.epoch + 1) & 0xff)) st = this.next ??= { epoch: h.epoch, key: nextEpochKey(this.cur.key), window: new ReplayWindow(), expiresAt: Infinity };
    else if (this.prev && h.epoch === this.prev.epoch) st = this.prev;
    if (!st) { this.stats.badEpoch++; return null; }

    const seen = st.window.check(h.counter);
    if (seen !== 'ok') { seen === 'replay' ? this.stats.replays++ : this.stats.tooOld++; return null; }
    const ct = packet.subarray(DATA_HEADER);
    const ptLen = ct.length - TAG_LEN;
    // A plain Uint8Array either way, as the other transports deliver: layers above copy
    // packets with slice(), which on a Buffer would share memory instead.
    const plaintext = inPlace ? new Uint8Array(packet.buffer, packet.byteOffset + DATA_HEADER, ptLen) : uninitialized(ptLen);
    if (!this.aead.openInto(st.key, h.counter, packet.subarray(0, DATA_HEADER), ct, plaintext)) {
      this.stats.decryptFailures++;
      return null;
    }
    st.window.mark(h.counter);
    if (st === this.next) {
      // The peer has moved on: current becomes previous (for stragglers), older keys go.
      if (this.prev) wipe(this.prev.key);
      this.prev = { ...this.cur, expiresAt: now + this.graceMs };
      this.cur = st;
      this.next = undefined;
    }
    return { type: h.type, plaintext };
  }

  /** Wipes every key. */
  destroy(): void {
    this.destroyed = true;
    wipe(this.sendKey);
    wipe(this.cur.key);
    wipe(this.prev?.key);
    wipe(this.next?.key);
  }
}
