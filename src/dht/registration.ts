// Entries a node keeps alive while it lives (Brunet's RpcDhtProxy): each is re-put every
// TTL/2 after a success, and retried sooner after a failure. Used for the VPN's address claims.
import type { TimerHandle, Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import type { Dht } from './dht.js';

export interface Registration { key: Uint8Array; value: Uint8Array; ttl: number; create: boolean; lastOk?: number; lastError?: string }

const RETRY_MAX_MS = 30_000;

export class Registrations {
  private entries = new Map<string, { reg: Registration; timer?: TimerHandle }>();
  constructor(private readonly dht: Dht, private readonly clock: Clock, private readonly log: Logger) {}

  private id(key: Uint8Array, value: Uint8Array): string {
    return Buffer.from(key).toString('base64') + '/' + Buffer.from(value).toString('base64');
  }

  /** Registers and performs the first write; resolves when it succeeded (or rejects). */
  async register(key: Uint8Array, value: Uint8Array, ttl: number, create = false): Promise<void> {
    const id = this.id(key, value);
    this.unregister(key, value);
    const slot: { reg: Registration; timer?: TimerHandle } = { reg: { key, value, ttl, create } };
    this.entries.set(id, slot);
    await this.refresh(id, true);
  }

  unregister(key: Uint8Array, value: Uint8Array): boolean {
    const id = this.id(key, value);
    const s = this.entries.get(id);
    s?.timer?.cancel();
    return this.entries.delete(id);
  }

  list(): Registration[] { return [...this.entries.values()].map((s) => s.reg); }

  close(): void {
    for (const s of this.entries.values()) s.timer?.cancel();
    this.entries.clear();
  }

  private async refresh(id: string, first: boolean): Promise<void> {
    const slot = this.entries.get(id);
    if (!slot) return;
    const r = slot.reg;
    try {
      await (r.create ? this.dht.create(r.key, r.value, r.ttl) : this.dht.put(r.key, r.value, r.ttl));
      r.lastOk = this.clock.now();
      r.lastError = undefined;
      this.schedule(id, (r.ttl * 1000) / 2);
    } catch (e) {
      r.lastError = (e as Error).message;
      this.log.warn(`re-registering ${Buffer.from(r.key).toString('utf8')}: ${r.lastError}`);
      this.schedule(id, Math.min(RETRY_MAX_MS, (r.ttl * 1000) / 4));
      if (first) throw e;
    }
  }

  private schedule(id: string, ms: number): void {
    const slot = this.entries.get(id);
    if (!slot) return;
    slot.timer?.cancel();
    slot.timer = this.clock.setTimeout(() => void this.refresh(id, false).catch(() => {}), Math.max(1000, ms));
  }
}
