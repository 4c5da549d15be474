// The liveness probes' timeouts adapt to the round trip a connection has shown (liveness.ts):
// a peer that answers slowly but always is kept, with one ping per quiet spell once its round
// trip is known; a dead peer is still dropped, within the bound the capped timeout sets; on a
// fast link the shipped 500 ms timeout is unchanged. Virtual time, a stub connection.
import t from 'tap';
import type { Connection } from '../src/connection/connection.js';
import { DEFAULT_LIVENESS_OPTIONS, Liveness } from '../src/connection/liveness.js';
import { VirtualClock } from '../src/util/virtual-clock.js';

/** A connection whose peer answers each ping `rtt` ms later (never, with Infinity: dead). */
function harness(rtt: number) {
  const clock = new VirtualClock(0);
  const c = { lastHeard: 0, suspect: false } as unknown as Connection;
  let pings = 0, nonce = 0, dropped = -1;
  const live: Liveness = new Liveness(clock, DEFAULT_LIVENESS_OPTIONS, (conn) => {
    pings++;
    const n = ++nonce;
    if (Number.isFinite(h.rtt)) clock.setTimeout(() => { conn.lastHeard = clock.now(); live.heard(conn); live.pong(conn, n); }, h.rtt);
    return n;
  }, () => dropped < 0, () => { dropped = clock.now(); });
  const h = { rtt, clock, c, live, pings: () => pings, dropped: () => dropped };
  return h;
}

t.test('a slow peer (2 s round trips) is kept, and costs one ping a quiet spell once measured', async (t) => {
  const h = harness(2000);
  let suspected = 0;
  for (let spell = 0; spell < 6; spell++) {
    const p0 = h.pings();
    h.live.sent(h.c); // we send; the peer stays quiet
    await h.clock.advance(10_000);
    if (h.c.suspect) suspected++;
    if (spell >= 1) t.equal(h.pings() - p0, 1, `spell ${spell}: one ping`);
  }
  t.equal(h.dropped(), -1, 'never dropped');
  t.ok(h.c.live!.srtt >= 1900 && h.c.live!.srtt <= 2100, `srtt ${h.c.live!.srtt} ms`);
  const rto = h.live.rto(h.c.live!);
  t.ok(rto >= 2250 && rto <= 3000, `the first probe waits ${rto} ms: past the round trip, within the 3 s cap`);
  t.equal(h.live.stats.dropped, 0);
  t.ok(suspected <= 1, `suspect at the end of ${suspected} spell(s) (only while the round trip was unknown)`);
});

t.test('without round-trip samples the same peer costs three pings in its first quiet spell', async (t) => {
  const h = harness(2000);
  h.live.sent(h.c);
  await h.clock.advance(10_000);
  t.equal(h.pings(), 3, 'timeouts of 0.5 and 1 s ran out before the 2 s answer');
  t.equal(h.dropped(), -1, 'the answer came before the third timeout');
});

t.test('a dead peer is still dropped: after 3.5 s on a fast link, within 21 s on a slow one', async (t) => {
  const fast = harness(Infinity);
  fast.live.sent(fast.c);
  await fast.clock.advance(30_000);
  t.equal(fast.dropped(), 1500 + 500 + 1000 + 2000, 'suspected after 1.5 s of silence, then 0.5 + 1 + 2 s');

  // A peer measured at 2 s that then dies: the timeouts start from the cap.
  const slow = harness(2000);
  slow.live.sent(slow.c);
  await slow.clock.advance(10_000);
  t.ok(slow.live.rto(slow.c.live!) > 2000, 'measured: the timeout is past the 2 s round trip');
  slow.rtt = Infinity;
  const sentAt = slow.clock.now(); // quiet for 8 s already: probed at once
  slow.live.sent(slow.c);
  await slow.clock.advance(60_000);
  t.ok(slow.dropped() > 0, 'dropped');
  t.ok(slow.dropped() - sentAt <= 3000 + 6000 + 12_000, `dropped ${slow.dropped() - sentAt} ms after we sent (at most 3 + 6 + 12 s)`);
});

t.test('a fast link keeps the shipped 500 ms timeout', async (t) => {
  const h = harness(1);
  for (let spell = 0; spell < 5; spell++) { h.live.sent(h.c); await h.clock.advance(5000); }
  t.equal(h.live.rto(h.c.live!), 500);
  t.equal(h.pings(), 5);
});
