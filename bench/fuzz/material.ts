// Secure-edge material: real handshakes between fixed keys (deterministic from the seed).
import { HandshakeState } from '../../src/edge/handshake.js';
import { Identity } from '../../src/edge/identity.js';
import { aeadEncrypt, x25519FromPrivate, type DhKeyPair } from '../../src/edge/primitives.js';
import { SIG_LABEL } from '../../src/edge/secure-edge.js';
import { securePrologue } from '../../src/edge/secure-listener.js';
import {
  ABORT_AUTH, abortHeader, encodeAbort, encodeDataHeader, encodeHello, encodeIdentity, encodeNoise, encodeRetry, MAX_CERTIFICATE, T_CONFIRM, T_DATA, T_FINISH, T_REPLY,
} from '../../src/edge/secure-wire.js';
import { newSessionStats, Session } from '../../src/edge/session.js';
import { realClock } from '../../src/util/clock.js';
import { cat, copy, EMPTY, u8, utf8 } from './bytes.js';
import type { Rng } from './rng.js';

export const FUZZ_NAMESPACE = 'fuzz';

/** An identity payload signed exactly as a real peer signs it. */
export function identityPayload(id: Identity, h: Uint8Array, certificate?: Uint8Array): Uint8Array {
  return encodeIdentity({ publicKey: id.publicKey, signature: id.sign(cat(SIG_LABEL, h, id.x25519.publicKey)), certificate });
}

export const identityFrom = (r: Rng): Identity => Identity.fromPrivateKeys(r.bytes(32), r.bytes(32));

export interface HsContext {
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
    const code = ABORT_AUTH + (k % 4);
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
