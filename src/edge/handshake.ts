// Noise_XXpsk3_25519_ChaChaPoly_SHA256, written against the Noise spec rev 34:
//
//   XXpsk3:
//     -> e
//     <- e, ee, s, es
//     -> s, se, psk
//
// CipherState / SymmetricState / HandshakeState follow spec §5 function by function, so
// the code can be read side by side with it (and is checked against the cacophony test
// vectors). The psk is the group secret: without it message 3 does not decrypt, so an
// outsider never completes a handshake with a member. Two small additions, both outside
// the Noise transcript: a callback that lets the identity payload be signed over the
// handshake hash at the moment it is encrypted, and "abort keys" derived right after
// message 2 so a refusal can be reported authentically to the exact peer that sent it.
import { scryptSync } from 'node:crypto';
import {
  CryptoFailure, HASH_LEN, KEY_LEN, TAG_LEN, aeadDecrypt, aeadEncrypt, dh, generateX25519, hkdf, sha256,
  wipe, type DhKeyPair,
} from './primitives.js';

export const NOISE_PROTOCOL = 'Noise_XXpsk3_25519_ChaChaPoly_SHA256';
const DHLEN = 32;
const MAX_NONCE = 2 ** 53; // never reached during a handshake; guards misuse
const EMPTY = new Uint8Array(0);
const utf8 = new TextEncoder();

/** The handshake cannot continue (bad MAC, bad key, wrong message, wrong order). */
export class HandshakeError extends Error {
  override name = 'HandshakeError';
}

/** Derives the 32-byte group secret (the Noise psk) from a passphrase. scrypt makes offline guessing slow. */
export function groupKey(passphrase: string, context = ''): Uint8Array {
  if (passphrase.length === 0) throw new HandshakeError('group passphrase must not be empty');
  const salt = `brunet-ts/group-key/v1/${context}`;
  return new Uint8Array(scryptSync(passphrase.normalize('NFC'), salt, KEY_LEN, { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }));
}

/** Spec §5.1. */
export class CipherState {
  private k: Buffer | undefined;
  private n = 0;

  initializeKey(key: Uint8Array | undefined): void {
    wipe(this.k);
    this.k = key ? Buffer.from(key) : undefined;
    this.n = 0;
  }
  hasKey(): boolean { return this.k !== undefined; }

  encryptWithAd(ad: Uint8Array, pt: Uint8Array): Buffer {
    if (!this.k) return Buffer.from(pt);
    if (this.n >= MAX_NONCE) throw new HandshakeError('nonce exhausted');
    return aeadEncrypt(this.k, this.n++, ad, pt);
  }

  /** On failure n is not incremented (spec) and HandshakeError is thrown. */
  decryptWithAd(ad: Uint8Array, ct: Uint8Array): Buffer {
    if (!this.k) return Buffer.from(ct);
    if (this.n >= MAX_NONCE) throw new HandshakeError('nonce exhausted');
    try {
      const pt = aeadDecrypt(this.k, this.n, ad, ct);
      this.n++;
      return pt;
    } catch (e) {
      if (e instanceof CryptoFailure) throw new HandshakeError('decryption failed');
      throw e;
    }
  }
}

/** Spec §5.2. */
export class SymmetricState {
  private ck: Buffer;
  private h: Buffer;
  readonly cs = new CipherState();

  constructor(protocolName: string) {
    const name = utf8.encode(protocolName);
    this.h = name.length <= HASH_LEN ? Buffer.concat([name, Buffer.alloc(HASH_LEN - name.length)]) : sha256(name);
    this.ck = Buffer.from(this.h);
  }

  mixKey(ikm: Uint8Array): void {
    const [ck, tempK] = hkdf(this.ck, ikm, 2);
    wipe(this.ck);
    this.ck = ck!;
    this.cs.initializeKey(tempK); // HASHLEN == 32, no truncation needed
    wipe(tempK);
  }
  mixHash(data: Uint8Array): void { this.h = sha256(this.h, data); }
  mixKeyAndHash(ikm: Uint8Array): void {
    const [ck, tempH, tempK] = hkdf(this.ck, ikm, 3);
    wipe(this.ck);
    this.ck = ck!;
    this.mixHash(tempH!);
    this.cs.initializeKey(tempK);
    wipe(tempK);
  }
  handshakeHash(): Buffer { return Buffer.from(this.h); }
  encryptAndHash(pt: Uint8Array): Buffer {
    const ct = this.cs.encryptWithAd(this.h, pt);
    this.mixHash(ct);
    return ct;
  }
  decryptAndHash(ct: Uint8Array): Buffer {
    const pt = this.cs.decryptWithAd(this.h, ct);
    this.mixHash(ct);
    return pt;
  }
  /** Two transport keys: [initiator→responder, responder→initiator]. */
  split(): [Buffer, Buffer] {
    const [k1, k2] = hkdf(this.ck, EMPTY, 2);
    return [k1!, k2!];
  }
  /** Extension: keys for authenticated aborts, bound to this point of the transcript. */
  deriveAbortKeys(): [Buffer, Buffer] {
    const [k1, k2] = hkdf(this.ck, utf8.encode('brunet-ts abort keys'), 2);
    return [k1!, k2!];
  }
  destroy(): void { wipe(this.ck); this.cs.initializeKey(undefined); }
}

type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss' | 'psk';
// XXpsk3: the psk token appended to the third message (spec §9.3).
const XXPSK3: readonly (readonly Token[])[] = [['e'], ['e', 'ee', 's', 'es'], ['s', 'se', 'psk']];

export interface HandshakeOptions {
  initiator: boolean;
  prologue: Uint8Array;
  /** Our static X25519 key pair. */
  s: DhKeyPair;
  /** 32-byte pre-shared key (the group secret). */
  psk: Uint8Array;
  /** Fixed ephemeral key, for known-answer tests only. */
  e?: DhKeyPair;
}

export interface TransportKeys {
  send: Buffer;
  recv: Buffer;
}

/** Spec §5.3, specialised to one pattern but still driven token by token. */
export class HandshakeState {
  readonly initiator: boolean;
  private readonly ss = new SymmetricState(NOISE_PROTOCOL);
  private readonly s: DhKeyPair;
  private e: DhKeyPair | undefined;
  private readonly fixedE: DhKeyPair | undefined;
  private rs: Uint8Array | undefined;
  private re: Uint8Array | undefined;
  private readonly psk: Buffer;
  private index = 0;
  private abort: [Buffer, Buffer] | undefined;
  private failed = false;

  constructor(o: HandshakeOptions) {
    if (o.psk.length !== KEY_LEN) throw new HandshakeError(`psk must be ${KEY_LEN} bytes, got ${o.psk.length}`);
    this.initiator = o.initiator;
    this.s = o.s;
    this.fixedE = o.e;
    this.psk = Buffer.from(o.psk);
    this.ss.mixHash(o.prologue);
    // XX has no pre-messages.
  }

  /** Index of the next message (0..3); 3 means the handshake is complete. */
  get messageIndex(): number { return this.index; }
  get complete(): boolean { return this.index === XXPSK3.length; }
  get remoteStatic(): Uint8Array | undefined { return this.rs; }
  get remoteEphemeral(): Uint8Array | undefined { return this.re; }
  get isMyTurn(): boolean { return !this.complete && (this.index % 2 === 0) === this.initiator; }
  handshakeHash(): Buffer { return this.ss.handshakeHash(); }
  /** [initiator→responder, responder→initiator] abort keys, available once message 2 is done. */
  get abortKeys(): [Buffer, Buffer] | undefined { return this.abort; }

  /**
   * Writes the next message. The payload may be a function of the handshake hash at the
   * moment it is encrypted, so an identity signature can cover the transcript.
   */
  writeMessage(payload: Uint8Array | ((h: Uint8Array) => Uint8Array)): Buffer {
    this.checkTurn(true);
    const out: Uint8Array[] = [];
    return this.guard(() => {
      for (const t of XXPSK3[this.index]!) {
        switch (t) {
          case 'e': {
            this.e = this.fixedE ?? generateX25519();
            out.push(this.e.publicKey);
            this.ss.mixHash(this.e.publicKey);
            this.ss.mixKey(this.e.publicKey); // psk handshakes also MixKey(e) (spec §9.2)
            break;
          }
          case 's': out.push(this.ss.encryptAndHash(this.s.publicKey)); break;
          case 'psk': this.ss.mixKeyAndHash(this.psk); break;
          default: this.mixDh(t);
        }
      }
      const p = typeof payload === 'function' ? payload(this.ss.handshakeHash()) : payload;
      out.push(this.ss.encryptAndHash(p));
      this.advance();
      return Buffer.concat(out);
    });
  }

  /** Reads the next message; returns the payload and the handshake hash it was encrypted under. */
  readMessage(msg: Uint8Array): { payload: Buffer; h: Buffer } {
    this.checkTurn(false);
    let pos = 0;
    const take = (n: number): Uint8Array => {
      if (pos + n > msg.length) this.fail('message too short');
      const b = msg.subarray(pos, pos + n);
      pos += n;
      return b;
    };
    return this.guard(() => {
      for (const t of XXPSK3[this.index]!) {
        switch (t) {
          case 'e': {
            this.re = Uint8Array.from(take(DHLEN));
            this.ss.mixHash(this.re);
            this.ss.mixKey(this.re);
            break;
          }
          case 's': {
            const len = this.ss.cs.hasKey() ? DHLEN + TAG_LEN : DHLEN;
            this.rs = Uint8Array.from(this.ss.decryptAndHash(take(len)));
            break;
          }
          case 'psk': this.ss.mixKeyAndHash(this.psk); break;
          default: this.mixDh(t);
        }
      }
      const h = this.ss.handshakeHash();
      const payload = this.ss.decryptAndHash(msg.subarray(pos));
      this.advance();
      return { payload, h };
    });
  }

  /** Spec Split(), oriented for this side. Only once complete. */
  split(): TransportKeys {
    if (!this.complete) throw new HandshakeError('split before the handshake completed');
    const [c1, c2] = this.ss.split();
    return this.initiator ? { send: c1, recv: c2 } : { send: c2, recv: c1 };
  }

  /** Erases the chaining key, psk and abort keys, and drops the ephemeral key. */
  destroy(): void {
    this.ss.destroy();
    wipe(this.psk);
    wipe(this.abort?.[0]);
    wipe(this.abort?.[1]);
    this.e = undefined;
  }

  private mixDh(t: Token): void {
    const e = this.e, s = this.s;
    const need = <T>(x: T | undefined, what: string): T => x ?? this.fail(`missing ${what} for ${t}`);
    let out: Buffer;
    switch (t) {
      case 'ee': out = dh(need(e, 'e'), need(this.re, 're')); break;
      case 'es': out = this.initiator ? dh(need(e, 'e'), need(this.rs, 'rs')) : dh(s, need(this.re, 're')); break;
      case 'se': out = this.initiator ? dh(s, need(this.re, 're')) : dh(need(e, 'e'), need(this.rs, 'rs')); break;
      case 'ss': out = dh(s, need(this.rs, 'rs')); break;
      default: return this.fail(`unexpected token ${t}`);
    }
    this.ss.mixKey(out);
    wipe(out);
  }

  /** Noise says a failed handshake must be abandoned; make sure nobody continues it. */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      this.failed = true;
      if (e instanceof HandshakeError) throw e;
      if (e instanceof CryptoFailure) throw new HandshakeError(e.message);
      throw e;
    }
  }

  private advance(): void {
    this.index++;
    if (this.index === 2) this.abort = this.ss.deriveAbortKeys();
  }

  private checkTurn(writing: boolean): void {
    if (this.failed) this.fail('handshake already failed');
    if (this.complete) this.fail('handshake already complete');
    if (this.isMyTurn !== writing) this.fail(writing ? 'not our turn to write' : 'not our turn to read');
  }

  private fail(msg: string): never {
    throw new HandshakeError(msg);
  }
}
