// Moving relayed connections to direct edges (Brunet testing's edge-replacement policy:
// UDP > TCP > relay). For each relayed pair the node with the larger address drives the
// attempts, so the two never replace each other's new edge; the rounds alternate who dials:
//
//   even round: we send `punch(dial=false)` and dial the peer's direct TAs; the peer sends a
//               few packets towards ours, which opens its NAT for our handshake (hole punch);
//   odd round:  we send `punch(dial=true)` and open our NAT towards the peer, which dials us —
//               for pairs where only the other direction can work (the peer is behind a NAT
//               and we are not, or only its outgoing TCP gets through).
//
// A new relayed connection gets its first attempt after a couple of seconds (the odd round if
// we made it: our Linker has just failed to dial the peer); afterwards every `upgradeMs`
// (jittered), backing off to 4 periods per peer while attempts in both directions fail (a
// symmetric NAT stays one), and half a second after either side announces new TAs.
import type { Address } from '../address/address.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import type { RandomSource } from '../util/random.js';
import type { Connection } from './connection.js';
import type { LinkManager } from './link-manager.js';
import { probe, replaceEdge } from './link-repair.js';
import type { ConnectionTable } from './table.js';

const FIRST_TRY_MS = 2000;
const RETRY_ON_NEW_TAS_MS = 500;
/** How long after a dial-me request we look whether the peer's dial succeeded. */
const CHECK_AFTER_MS = 8000;
const MAX_BACKOFF = 4;
/** After our dial failed, the peer's turn comes this soon. */
const SWAP_MS = 500;

interface PeerState { round: number; wait: number; next: number }

export class RelayUpgrader {
  private readonly peers = new Map<string, PeerState>();
  private readonly busy = new Set<string>();
  private timer?: TimerHandle;
  private running = false;

  constructor(
    private readonly host: { address: Address; table: ConnectionTable; link: LinkManager; onUpgradeFailed?: () => void },
    private readonly clock: Clock,
    private readonly random: RandomSource,
    private readonly periodMs: number,
    private readonly stats: { upgrades: number },
    private readonly log: Logger,
  ) {
    host.table.onChange((ev, c) => {
      if (ev === 'remove') { if (!host.table.get(c.address)) this.peers.delete(c.address.key); return; }
      if (ev === 'add' && c.edge.kind === 'tunnel' && this.drives(c)) this.clock.setTimeout(() => this.attempt(c), FIRST_TRY_MS);
    });
  }

  start(): void {
    if (this.periodMs <= 0) return;
    this.running = true;
    this.schedule();
  }

  stop(): void {
    this.running = false;
    this.timer?.cancel();
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = this.clock.setTimeout(() => { this.round(); this.schedule(); }, this.periodMs * (0.75 + 0.5 * this.random.float()));
  }

  /**
   * Our own TAs changed (our NAT mapping just learnt, say after UDP became usable): the
   * peers we drive get a fresh attempt, not only after their backoff.
   */
  retryAll(): void { for (const c of this.host.table.all()) this.retrySoon(c); }

  /**
   * A relayed peer we drive gets a fresh attempt shortly, its backoff forgotten: it announced
   * new TAs (e.g. it just learnt its public mapping).
   */
  retrySoon(c: Connection): void {
    if (c.edge.kind !== 'tunnel' || !this.drives(c)) return;
    this.peers.delete(c.address.key);
    this.clock.setTimeout(() => this.attempt(c), RETRY_ON_NEW_TAS_MS);
  }

  private drives(c: Connection): boolean { return this.running && this.host.address.value > c.address.value; }

  private round(): void {
    const now = this.clock.now();
    for (const c of [...this.host.table.all()]) {
      const st = this.peers.get(c.address.key);
      if (c.edge.kind === 'tunnel' && this.drives(c) && (!st || now >= st.next)) this.attempt(c);
    }
  }

  private directTAs(c: Connection) { return c.peerTAs.filter((t) => t.kind !== 'tunnel'); }

  private attempt(c: Connection): void {
    const key = c.address.key, link = this.host.link;
    if (!this.running || this.busy.has(key) || this.host.table.get(c.address) !== c || c.edge.kind !== 'tunnel') return;
    const tas = this.directTAs(c);
    if (tas.length === 0) return;
    // Our Linker made this relay connection only after our dials to the peer's direct TAs had
    // failed: the peer dials first (a public node without UDP, for one, is reached by its NAT'd
    // peers' TCP dials, never by its own, each of which would cost a handshake timeout first).
    const st = this.peers.get(key) ?? { round: c.initiator ? 1 : 0, wait: 1, next: 0 };
    this.peers.set(key, st);
    const weDial = st.round++ % 2 === 0;
    this.busy.add(key);
    this.log.debug(`upgrade ${key} round ${st.round - 1}: ${weDial ? 'we dial' : 'peer dials'} ${tas.join(' ')}`);
    const done = (ok: boolean) => {
      this.busy.delete(key);
      this.log.debug(`upgrade ${key}: ${weDial ? 'our dial' : 'peer\'s dial'} ${ok ? 'worked' : 'failed'}`);
      if (ok) { this.peers.delete(key); return; }
      this.host.onUpgradeFailed?.();
      // Our dial failed: let the peer dial at once (only its outgoing TCP, or its side of the
      // NAT, may get through). Back off only once both directions have failed.
      if (weDial) { this.clock.setTimeout(() => this.attempt(c), SWAP_MS); return; }
      st.wait = Math.min(MAX_BACKOFF, st.wait * 2);
      st.next = this.clock.now() + st.wait * this.periodMs;
    };
    link.sendPunch(c, !weDial);
    if (weDial) {
      replaceEdge(link, c, tas).then((n) => { if (n) this.stats.upgrades++; done(!!n); }, () => done(false));
    } else {
      probe(link, tas);
      this.clock.setTimeout(() => done(this.host.table.get(c.address)?.edge.kind !== 'tunnel'), CHECK_AFTER_MS);
    }
  }

  /** The peer of a relay connection asks us to open our NAT towards it (dial false) or to dial it. */
  onPunch(from: Connection, dial: boolean): void {
    if (from.edge.kind !== 'tunnel') return;
    // The peer wants a direct path: make sure what we advertise of our NAT is current.
    this.host.onUpgradeFailed?.();
    const tas = this.directTAs(from);
    if (!dial) { probe(this.host.link, tas); return; }
    const key = from.address.key;
    this.log.debug(`punch from ${key}: dial ${dial}${this.busy.has(key) ? ' (busy)' : ''}`);
    if (this.busy.has(key)) return;
    this.busy.add(key);
    replaceEdge(this.host.link, from, tas).then((n) => { if (n) { this.stats.upgrades++; this.log.debug(`moved ${key} off its relay edge (we dialled)`); } }, () => {})
      .finally(() => this.busy.delete(key));
  }
}
