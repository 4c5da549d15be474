// Decoder targets for the secure edge: handshake packets, transport headers, identity
// payloads, Session.open and the Noise message readers.

import { HandshakeError, HandshakeState } from '../../src/edge/handshake.js';
import {
  ABORT_AUTH, COOKIE_LEN, DATA_HEADER, decodeDataHeader, decodeHandshake, IDENTITY_FIXED, IDENTITY_VERSION, decodeIdentity, encodeAbort, encodeDataHeader, encodeHello, encodeIdentity, encodeNoise, encodeRetry,
  SECURE_WIRE_VERSION, T_ABORT, T_CONFIRM, T_DATA, T_FINISH, T_HELLO, T_REPLY, T_RETRY, type HandshakePacket,
} from '../../src/edge/secure-wire.js';
import { newSessionStats, Session } from '../../src/edge/session.js';
import { realClock } from '../../src/util/clock.js';
import { cat, EMPTY, hex, sameBytes, u8 } from './bytes.js';
import { identityPayload, type SecureMaterial } from './material.js';
import type { Rng } from './rng.js';
import { isWireError, type DecoderTarget } from './target.js';

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
    u8(T_HELLO, SECURE_WIRE_VERSION, 0), u8(T_HELLO, SECURE_WIRE_VERSION, COOKIE_LEN), u8(T_RETRY, SECURE_WIRE_VERSION), u8(T_REPLY, SECURE_WIRE_VERSION),
    u8(T_FINISH, SECURE_WIRE_VERSION), u8(T_ABORT, SECURE_WIRE_VERSION, ABORT_AUTH), u8(T_ABORT, SECURE_WIRE_VERSION, 9 /* no such code */),
    u8(T_HELLO, SECURE_WIRE_VERSION + 1, 0),
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
      check: (h, b) => { if (!sameBytes(encodeDataHeader(h as ReturnType<typeof decodeDataHeader>), b.subarray(0, DATA_HEADER))) throw new Error('re-encoding differs'); },
    },
    {
      name: 'decodeIdentity', decode: decodeIdentity, pool: mat.identityPool, prefixes: [u8(IDENTITY_VERSION), cat(u8(IDENTITY_VERSION), new Uint8Array(IDENTITY_FIXED - 3), u8(0, 0))], bodyStart: null,
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
