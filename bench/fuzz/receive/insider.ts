// Phase 5 of the receive path: insiders (they hold the group key) send mutated identity
// payloads, as initiator (message 3) and as responder (message 2). The outcome must be exactly
// what the payload deserves: malformed → ABORT protocol, bad signature → ABORT identity,
// otherwise accepted.
import { HandshakeState } from '../../../src/edge/handshake.js';
import { verifySignature } from '../../../src/edge/identity.js';
import { SIG_LABEL } from '../../../src/edge/secure-edge.js';
import { HandshakeFailure } from '../../../src/edge/secure-types.js';
import {
  ABORT_IDENTITY, ABORT_PROTOCOL, decodeIdentity, encodeHello, encodeNoise, T_ABORT, T_CONFIRM, T_FINISH, T_HELLO, T_REPLY, T_RETRY,
} from '../../../src/edge/secure-wire.js';
import { newSessionStats, Session } from '../../../src/edge/session.js';
import { realClock } from '../../../src/util/clock.js';
import { cat, EMPTY } from '../bytes.js';
import { identityPayload } from '../material.js';
import { mutate } from '../mutate.js';
import { describe } from '../target.js';
import { flush, within, type Harness } from './harness.js';

export async function insiderPhase(harness: Harness): Promise<void> {
  const { r, mat, res, attacker, victim, victimTA, insiderId, fail, count, deliveredBefore, budgetOf, decodes } = harness;
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
