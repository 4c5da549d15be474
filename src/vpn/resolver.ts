// IP → node address, verified (only a dhcp: claim signed by the node it names counts, see
// mapping.ts lookupOwner) and cached so the packet path never waits on the DHT once a peer is known
// (Brunet's DhtAddressResolver). Stale entries keep serving while a refresh runs; an IP
// nobody owns is remembered briefly so a scan of the subnet does not flood the DHT.
import type { Address } from '../address/address.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';

/** Looks the owner up (the DHT's `dhcp:<ns>:<ip>` claim); null when nobody owns it. */
export type OwnerLookup = (ip: number) => Promise<Address | null>;

export interface ResolverOptions {
  /** Entries younger than this are used without a refresh. */
  freshMs: number;
  /** How long "nobody owns this IP" is believed. */
  negativeMs: number;
}

export const DEFAULT_RESOLVER_OPTIONS: ResolverOptions = { freshMs: 120_000, negativeMs: 3000 };

interface Entry { owner: Address | null; at: number; lookup?: Promise<Address | null> }

export class AddressResolver {
  readonly stats = { hits: 0, misses: 0, lookups: 0, failures: 0 };
  private entries = new Map<number, Entry>();
  /** Called when a lookup finishes, so queued packets and ARP requests can go on. */
  onResolved: (ip: number, owner: Address | null) => void = () => {};

  constructor(
    private readonly lookup: OwnerLookup,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: ResolverOptions = DEFAULT_RESOLVER_OPTIONS,
  ) {}

  /** The owner if known (null: known to have none); undefined while a first lookup runs. */
  get(ip: number): Address | null | undefined {
    const e = this.entries.get(ip);
    if (!e || e.at === 0) { this.stats.misses++; this.refresh(ip); return undefined; }
    const age = this.clock.now() - e.at;
    if (e.owner === null) {
      if (age <= this.opts.negativeMs) { this.stats.hits++; return null; }
      this.stats.misses++;
      this.refresh(ip);
      return undefined;
    }
    // Stale entries keep serving while they are refreshed in the background.
    if (age > this.opts.freshMs) this.refresh(ip);
    this.stats.hits++;
    return e.owner;
  }

  /** Forgets what we believe about an IP (e.g. a packet came from another node than cached). */
  invalidate(ip: number): void {
    const e = this.entries.get(ip);
    if (e && !e.lookup) this.refresh(ip);
  }

  get freshMs(): number { return this.opts.freshMs; }

  /** Every IP whose verified owner was confirmed within maxAgeMs: for get_state. */
  known(maxAgeMs: number): Array<{ ip: number; owner: Address }> {
    const out: Array<{ ip: number; owner: Address }> = [];
    const now = this.clock.now();
    for (const [ip, e] of this.entries) if (e.owner && now - e.at <= maxAgeMs) out.push({ ip, owner: e.owner });
    return out;
  }

  /** What the cache holds now (no lookup, no statistics): for get_state. */
  peek(ip: number): Address | null | undefined {
    const e = this.entries.get(ip);
    return e && e.at > 0 ? e.owner : undefined;
  }

  /**
   * The verified owner: from the cache while fresh, otherwise after a lookup. "Nobody" is
   * looked up again, since the caller has word of an owner (a member record) to check.
   */
  async resolve(ip: number): Promise<Address | null> {
    const got = this.get(ip);
    if (got) return got;
    if (got === null) this.refresh(ip);
    return (await this.entries.get(ip)?.lookup) ?? null;
  }

  private refresh(ip: number): void {
    let e = this.entries.get(ip);
    if (e?.lookup) return;
    if (!e) { e = { owner: null, at: 0 }; this.entries.set(ip, e); }
    this.stats.lookups++;
    const entry = e;
    entry.lookup = this.lookup(ip).then(
      (owner) => owner,
      (err) => {
        this.stats.failures++;
        this.log.debug(`resolving ${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}: ${(err as Error).message}`);
        // A failed lookup keeps what we had; with nothing, the IP counts as unowned for now.
        return entry.at > 0 ? entry.owner : null;
      });
    void entry.lookup.then((owner) => {
      entry.lookup = undefined;
      entry.owner = owner;
      entry.at = this.clock.now();
      this.onResolved(ip, owner);
    });
  }
}
