// Discovery: a device publishes its certificate in the DHT under a key derived from its user's
// public key, sealed with a key derived from the same (wire.ts), and signed by its node key
// (the DHT's shared signed claims). A friend, who knows the user's public key from the friend
// code, reads the records and finds the user's devices. A record counts only if the node that
// signed it is the node its certificate names, and the certificate is the user's.
import type { Address } from '../../address/address.js';
import type { Dht } from '../../dht/dht.js';
import type { Registrations } from '../../dht/registration.js';
import type { CertCheck, CertInfo } from './friend-devices.js';
import { openRecord, recordKey, sealRecord, SocialWireError } from './wire.js';

/** A record lives this long unless re-put (every TTL/2): a device that crashed drops out within it. */
export const RECORD_TTL = 120;

export interface DiscoveryComponents {
  dht: Pick<Dht, 'get'>;
  registrations: Pick<Registrations, 'register' | 'unregister'>;
  check: CertCheck;
  now(): number;
}

export interface FoundDevice { cert: Uint8Array; info: CertInfo; claimer: Address }

export class Discovery {
  readonly stats = { published: 0, reads: 0, readFailures: 0, refused: 0 };
  private published?: { key: Uint8Array; value: Uint8Array };

  constructor(private readonly c: DiscoveryComponents, private readonly userKey: Uint8Array) {}

  /** Publishes (or replaces) our record; the registration service keeps it alive. */
  async publish(cert: Uint8Array): Promise<void> {
    this.withdraw();
    const p = { key: recordKey(this.userKey), value: sealRecord(this.userKey, cert) };
    this.published = p;
    this.stats.published++;
    // A first put without a majority is retried by the registration service.
    await this.c.registrations.register(p.key, p.value, RECORD_TTL, false).catch(() => {});
  }

  /** Stops re-putting our record (it expires within RECORD_TTL). */
  withdraw(): void {
    if (this.published) this.c.registrations.unregister(this.published.key, this.published.value);
    this.published = undefined;
  }

  /** The devices a user's records name, each checked; [] when the DHT cannot be read. */
  async devicesOf(userKey: Uint8Array): Promise<FoundDevice[]> {
    let values;
    try { values = await this.c.dht.get(recordKey(userKey)); } catch { this.stats.readFailures++; return []; }
    this.stats.reads++;
    const found = new Map<string, FoundDevice>();
    for (const v of values) {
      if (!v.claimer) continue;
      let cert: Uint8Array;
      try { cert = openRecord(userKey, v.value); } catch (e) {
        if (!(e instanceof SocialWireError)) throw e;
        this.stats.refused++;
        continue;
      }
      const info = this.c.check(cert, this.c.now());
      if (typeof info === 'string' || !info.node.equals(v.claimer) || !Buffer.from(info.userKey).equals(Buffer.from(userKey))) { this.stats.refused++; continue; }
      const had = found.get(info.node.key);
      if (!had || had.info.expiresAt < info.expiresAt) found.set(info.node.key, { cert, info, claimer: v.claimer });
    }
    return [...found.values()];
  }
}
