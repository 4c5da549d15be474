// Phases 2 and 3 of the receive path: the honest listener connects to the victim. Packets are
// injected just before the genuine FINISH (victim = responder waiting for message 3), then
// once the edge is up (victim = established responder).
import type { SecureEdge } from '../../../src/edge/secure-edge.js';
import { HandshakeFailure } from '../../../src/edge/secure-types.js';
import { COOKIE_LEN, T_DATA, T_FINISH, T_HELLO } from '../../../src/edge/secure-wire.js';
import { copy, sameBytes } from '../bytes.js';
import { describe } from '../target.js';
import { flush, stallGuard, timerTick, within, type Harness } from './harness.js';

export async function respondPhases(h: Harness): Promise<void> {
  const { r, res, honest, victimTA, staticPool, fail, count, deliveredBefore, budgetOf, decodes, batch, sentOn, inject, pair, victimLive } = h;
  const target2 = budgetOf('responder'), target3 = budgetOf('established');
  let n2 = 0, n3 = 0;
  const stalled = stallGuard(fail, 'responder phases');
  while (n2 < target2 || n3 < target3) {
    if (stalled(n2 + n3)) break;
    let terminalSent = false, genuineCopy = false;
    let realFinish: Uint8Array | undefined;
    h.injector = (p, e) => {
      if (p[0] === T_FINISH && !realFinish && n2 < target2) {
        realFinish = copy(p);
        const sent = sentOn(e);
        const hello = sent.find((x) => x[0] === T_HELLO && x[2] === COOKIE_LEN) ?? sent[0]!;
        const terminal = (x: Uint8Array) => decodes(x)?.type === T_FINISH && !sameBytes(x, p);
        const b = batch(8 + r.int(48), [p, hello, ...sent, ...staticPool], terminal, terminal, r.chance(0.15), [p]);
        n2 += b.packets.length;
        count('responder awaiting msg3', b.packets.length);
        terminalSent = b.terminal;
        genuineCopy = b.packets.some((x) => sameBytes(x, p));
        return [...b.packets, p];
      }
      return 'pass';
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
    h.injector = undefined;
    await flush();
    // A genuine copy earlier in the batch completes the handshake first; the forgery is then ignored.
    if (he && terminalSent && !genuineCopy) fail('the victim accepted a handshake after a forged FINISH');
    if (he) {
      res.handshakesCompleted++;
      const ve = victimLive(he);
      if (!ve) { fail('victim has no edge for a completed handshake'); he.close(); continue; }
      const exchange = pair(he, ve);
      await timerTick();
      await exchange('before', 3);
      // Established: replays and mutations of real DATA, CONFIRM, FINISH, garbage.
      const real = sentOn(he.inner).filter((x) => x[0] === T_DATA || x[0] === T_FINISH || x[0] === T_HELLO);
      const k = 16 + r.int(96);
      const b = batch(k, [...real, ...real, ...staticPool], undefined, undefined, false, []);
      inject(he.inner, b.packets);
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
