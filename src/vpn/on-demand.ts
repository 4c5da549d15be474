// On-demand shortcuts (IPOP's threshold_on_demand / ttl_on_demand): VPN traffic toward a
// peer above `threshold` bytes/s opens a direct connection to it, so the packets stop
// taking greedy multi-hop routes; once the traffic stays below the threshold for
// `idleTimeout` seconds the connection is closed again.
import type { Address } from '../address/address.js';
import type { Connection } from '../connection/connection.js';
import type { OnDemandConfig } from '../config/ipop-config.js';
import type { LinkManager } from '../connection/link-manager.js';
import type { Connector } from '../connection/overlord/overlord.js';
import type { ConnectionTable } from '../connection/table.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/log.js';

export const ON_DEMAND_TYPE = 'structured.ondemand';
const TICK_MS = 1000;
const RETRY_MS = 5000;

interface Peer { address: Address; window: number; lastBusy: number; connecting: boolean; retryAt: number }

/** What on-demand shortcuts need from their node (a Node is one). */
export interface OnDemandComponents {
  address: Address;
  table: Pick<ConnectionTable, 'get' | 'neighborsOf'>;
  link: Pick<LinkManager, 'close'>;
  connector: Pick<Connector, 'connectTo'>;
  clock: Clock;
  log: Logger;
}

export class OnDemand {
  readonly stats = { opened: 0, trimmed: 0, failed: 0 };
  private peers = new Map<string, Peer>();
  private timer?: TimerHandle;
  private windowStart: number;

  constructor(private readonly node: OnDemandComponents, private readonly cfg: OnDemandConfig) {
    this.windowStart = node.clock.now();
    if (cfg.enabled) this.timer = node.clock.setInterval(() => this.tick(), TICK_MS);
  }

  close(): void { this.timer?.cancel(); }

  /** Counts VPN bytes to or from a peer; cheap, called per packet. */
  note(address: Address, bytes: number): void {
    if (!this.cfg.enabled) return;
    let p = this.peers.get(address.key);
    if (!p) { p = { address, window: 0, lastBusy: 0, connecting: false, retryAt: 0 }; this.peers.set(address.key, p); }
    p.window += bytes;
    // Reaching a second's worth of threshold early need not wait for the next tick.
    if (p.window >= this.cfg.threshold) { p.lastBusy = this.node.clock.now(); this.maybeConnect(p); }
  }

  /** Whether a connection is one of ours to trim (and reported as on-demand). */
  isOnDemand(c: Connection): boolean { return c.type === ON_DEMAND_TYPE; }

  private tick(): void {
    const now = this.node.clock.now();
    const secs = Math.max(0.001, (now - this.windowStart) / 1000);
    this.windowStart = now;
    const idleMs = this.cfg.idleTimeout * 1000;
    for (const [key, p] of this.peers) {
      if (p.window / secs >= this.cfg.threshold) p.lastBusy = now;
      p.window = 0;
      if (now - p.lastBusy <= idleMs) continue;
      const c = this.node.table.get(p.address);
      if (c && c.type === ON_DEMAND_TYPE && !this.isRingNeighbour(c) && !c.relayHeld(now)) {
        this.stats.trimmed++;
        this.node.link.close(c, 'trimmed: idle on-demand connection');
      }
      if (!p.connecting) this.peers.delete(key);
    }
  }

  /** The near overlord may have adopted the connection as a ring neighbour: keep it then. */
  private isRingNeighbour(c: Connection): boolean {
    const n = this.node.table.neighborsOf(this.node.address, 2);
    return [...n.left, ...n.right].some((x) => x === c);
  }

  private maybeConnect(p: Peer): void {
    const now = this.node.clock.now();
    if (p.connecting || now < p.retryAt || this.node.table.get(p.address)) return;
    p.connecting = true;
    this.node.connector.connectTo(p.address, 'greedy', ON_DEMAND_TYPE).then((infos) => {
      p.connecting = false;
      if (infos.some((i) => i.address.equals(p.address)) && this.node.table.get(p.address)) { this.stats.opened++; return; }
      this.stats.failed++;
      p.retryAt = this.node.clock.now() + RETRY_MS;
    }, (e) => {
      p.connecting = false;
      this.stats.failed++;
      p.retryAt = this.node.clock.now() + RETRY_MS;
      this.node.log.debug(`on-demand connection to ${p.address.key} failed: ${(e as Error).message}`);
    });
  }

  /** Connects to a peer regardless of traffic (on-demand off: every member, right away). */
  connectNow(address: Address): void {
    let p = this.peers.get(address.key);
    if (!p) { p = { address, window: 0, lastBusy: Number.MAX_SAFE_INTEGER, connecting: false, retryAt: 0 }; this.peers.set(address.key, p); }
    this.maybeConnect(p);
  }
}
