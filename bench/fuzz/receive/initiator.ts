// Phase 4 of the receive path: the victim connects to the honest listener. Packets are
// injected just before the genuine REPLY (victim = initiator waiting for message 2), then
// once the edge is up (victim = established initiator).
import type { SecureEdge } from '../../../src/edge/secure-edge.js';
import { HandshakeFailure } from '../../../src/edge/secure-types.js';
import { T_ABORT, T_REPLY } from '../../../src/edge/secure-wire.js';
import { sameBytes } from '../bytes.js';
import { describe } from '../target.js';
import { flush, stallGuard, timerTick, within, type Harness } from './harness.js';

export async function initiatorPhase(h: Harness): Promise<void> {
  const { r, res, victim, honestTA, honestInbound, staticPool, fail, count, budgetOf, decodes, batch, sentOn, inject, pair } = h;
  const target = budgetOf('initiator');
  let n = 0;
  const stalled = stallGuard(fail, 'initiator phase');
  while (n < target) {
    if (stalled(n)) break;
    let terminalSent = false, genuineCopy = false;
    let done = false;
    h.injector = (p, e) => {
      if (p[0] === T_REPLY && !done) {
        done = true;
        const terminal = (x: Uint8Array) => decodes(x)?.type === T_REPLY && !sameBytes(x, p);
        const b = batch(8 + r.int(40), [p, ...sentOn(e), ...staticPool], terminal, terminal, r.chance(0.15), [p]);
        n += b.packets.length;
        count('initiator awaiting msg2', b.packets.length);
        terminalSent = b.terminal;
        genuineCopy = b.packets.some((x) => sameBytes(x, p));
        return [...b.packets, p];
      }
      return 'pass';
    };
    const inbound0 = honestInbound.length;
    let ve: SecureEdge | undefined;
    try {
      ve = await within(victim.createEdge(honestTA), 8000, 'handshake from the victim');
    } catch (e) {
      if (!(e instanceof HandshakeFailure)) fail(`victim createEdge rejected with ${describe(e)}`);
      else if (!terminalSent || genuineCopy) fail(`a victim-initiated handshake failed without a terminal packet (or after the genuine REPLY): ${e.message}`);
      else res.handshakesEndedByInjection++;
    }
    h.injector = undefined;
    await flush();
    if (ve && terminalSent && !genuineCopy) fail('the victim accepted a forged REPLY');
    if (ve) {
      res.handshakesCompleted++;
      const he = honestInbound[inbound0];
      if (!he) { fail('honest listener has no edge for a completed handshake'); ve.close(); continue; }
      const exchange = pair(he, ve);
      await timerTick();
      await exchange('before', 3);
      const real = sentOn(he.inner).filter((x) => x[0] !== T_ABORT);
      const b = batch(16 + r.int(64), [...real, ...real, ...staticPool], undefined, undefined, false, []);
      inject(he.inner, b.packets);
      n += b.packets.length;
      count('established initiator', b.packets.length);
      await flush();
      if (ve.closed || he.closed) fail('injected packets closed an established (victim-initiated) edge');
      else await exchange('after', 4);
      ve.close('done');
      await flush(2);
    }
  }
}
