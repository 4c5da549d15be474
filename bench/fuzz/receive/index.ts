// The receive path of a SecureEdgeListener under attack: garbage and mutated real handshake
// and transport packets are injected into a victim listener over the in-memory transport, in
// every state (unbound inner edge, responder waiting for message 3, initiator waiting for
// message 2, established), plus insiders that hold the group key and send mutated identity
// payloads. Nothing may escape (no uncaught exception or rejection, no handler error, no
// "receive error"), no forged or replayed packet may be delivered, a batch that contains no
// packet able to end a handshake must not end it, and the listener must still complete real
// handshakes and exchange data at the end.
import type { SecureMaterial } from '../material.js';
import { describe } from '../target.js';
import { flush, openHarness, timerTick, within, type Harness, type ReceiveResult } from './harness.js';
import { initiatorPhase } from './initiator.js';
import { insiderPhase } from './insider.js';
import { respondPhases } from './responder.js';
import { unboundPhase } from './unbound.js';

export type { ReceiveResult } from './harness.js';

/**
 * Injects `budget` fuzz packets into a victim SecureEdgeListener, phase by phase; pushes
 * every problem to `failures`.
 */
export async function fuzzReceivePath(budget: number, seed: number, mat: SecureMaterial, failures: string[]): Promise<ReceiveResult> {
  const t0 = performance.now();
  const h = await openHarness(budget, seed, mat, failures);
  try {
    await unboundPhase(h);
    await respondPhases(h);
    await initiatorPhase(h);
    await insiderPhase(h);
    await finalCheck(h);
  } catch (e) {
    h.fail(`harness aborted: ${describe(e)}`);
    h.res.finalCheck = 'FAILED';
  } finally {
    await h.close();
  }
  const s = h.victim.stats;
  h.res.victim = {
    packetsIn: s.packetsIn, malformed: s.malformed, retriesSent: s.retriesSent, cookiesInvalid: s.cookiesInvalid, decryptFailures: s.decryptFailures,
    replays: s.replays, tooOld: s.tooOld, badEpoch: s.badEpoch, handshakesOk: s.handshakesOk, handshakesFailed: s.handshakesFailed,
    handlerErrors: s.handlerErrors,
  };
  h.res.ms = performance.now() - t0;
  return h.res;
}

/** Finally: the victim still works both ways, and holds nothing once its edges are closed. */
async function finalCheck(h: Harness): Promise<void> {
  const { victim, honest, victimTA, honestTA, honestInbound, fail, pair, victimLive } = h;
  const a = await within(honest.createEdge(victimTA), 8000, 'final handshake to the victim');
  const ve = victimLive(a);
  if (!ve) fail('final: victim has no edge');
  else { await timerTick(); await pair(a, ve)('final', 20); }
  const inbound0 = honestInbound.length;
  const b = await within(victim.createEdge(honestTA), 8000, 'final handshake from the victim');
  const he = honestInbound[inbound0];
  if (!he) fail('final: honest listener has no edge for the victim-initiated handshake');
  else { await timerTick(); await pair(he, b)('final', 20); }
  a.close('done');
  b.close('done');
  await flush(3);
  if (h.strays()) fail(`${h.strays()} packets delivered on edges before the harness expected any`);
  h.res.finalCheck = 'ok: handshakes and data both ways';

  if (victim.pendingHandshakes !== 0) fail(`victim holds ${victim.pendingHandshakes} pending handshakes at the end`);
  if (victim.edgeCount !== 0) fail(`victim holds ${victim.edgeCount} live edges at the end`);
  if (victim.wrappedEdges !== 0) fail(`victim wraps ${victim.wrappedEdges} inner edges at the end`);
}
