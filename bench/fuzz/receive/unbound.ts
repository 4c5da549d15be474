// Phase 1 of the receive path: a raw attacker edge; the victim has no state for it until a
// cookied HELLO. Batches of garbage and mutations, sometimes ended by one forged cookied
// HELLO (which must close the edge) or followed by the genuine one (which must be answered).
import { HandshakeState } from '../../../src/edge/handshake.js';
import { x25519FromPrivate } from '../../../src/edge/primitives.js';
import { encodeHello, T_HELLO, T_REPLY, T_RETRY } from '../../../src/edge/secure-wire.js';
import { EMPTY, hex, sameBytes } from '../bytes.js';
import { flush, type Harness } from './harness.js';

export async function unboundPhase(h: Harness): Promise<void> {
  const { r, mat, res, attacker, victim, victimTA, insiderId, staticPool, fail, count, deliveredBefore, budgetOf, decodes, batch } = h;
  const target = res.injected + budgetOf('unbound');
  while (res.injected < target) {
    const edge = await attacker.createEdge(victimTA);
    const inbox: Uint8Array[] = [];
    edge.onPacket = (p) => inbox.push(p);
    const wrongKey = r.int(4) === 0;
    const hs = new HandshakeState({ initiator: true, prologue: mat.prologue, s: insiderId.x25519, psk: wrongKey ? r.bytes(32) : mat.psk, e: x25519FromPrivate(r.bytes(32)) });
    const m1 = hs.writeMessage(EMPTY);
    edge.send(encodeHello(undefined, m1));
    await flush();
    const retry = inbox.map(decodes).find((m) => m?.type === T_RETRY);
    if (!retry || retry.type !== T_RETRY) { fail('no RETRY for a cookie-less HELLO'); break; }
    const good = encodeHello(retry.cookie, m1);
    const eph = m1.subarray(0, 32);
    // Terminal: decodes as a cookied HELLO with the right cookie and ephemeral, but not the genuine HELLO.
    const terminal = (p: Uint8Array) => {
      const m = decodes(p);
      return m?.type === T_HELLO && !!m.cookie && sameBytes(m.cookie, retry.cookie) && sameBytes(m.noise.subarray(0, 32), eph) && !sameBytes(p, good);
    };
    const genuine = (p: Uint8Array) => sameBytes(p, good);
    const n = 8 + r.int(32);
    const b = batch(n, [good, encodeHello(undefined, m1), ...staticPool], (p) => terminal(p) || genuine(p), terminal, r.chance(0.3), [good]);
    const d0 = deliveredBefore();
    for (const p of b.packets) edge.send(p);
    const sendGenuine = !b.terminal && r.chance(0.25);
    if (sendGenuine) edge.send(good); // makes the victim hold a responder handshake for this edge
    await flush();
    res.delivered += deliveredBefore() - d0 - (sendGenuine ? 1 : 0);
    count('unbound edge', b.packets.length);
    if (b.terminal) {
      res.handshakesEndedByInjection++;
      if (!edge.closed) fail(`a cookied HELLO with a broken Noise message did not close the edge: ${hex(b.packets[b.packets.length - 1]!)} vs genuine ${hex(good)}; stats ${JSON.stringify(victim.stats.handshakesFailed)} pending ${victim.pendingHandshakes}`);
    } else if (sendGenuine) {
      if (!inbox.some((p) => p[0] === T_REPLY)) fail('the genuine cookied HELLO after a garbage batch got no REPLY');
      if (victim.pendingHandshakes !== 1) fail(`expected 1 pending handshake, have ${victim.pendingHandshakes}`);
    } else if (edge.closed) fail('a batch without a valid cookied HELLO closed the edge');
    edge.close('done');
    await flush(2);
  }
  if (victim.pendingHandshakes !== 0) fail(`${victim.pendingHandshakes} responder handshakes left after the attacker edges closed`);
}
