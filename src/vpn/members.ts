// The namespace's member list (the `ipop:<ns>:members` records, see mapping.ts). A record is
// only believed when it is signed by the node it names AND (router mode) that node is the
// verified owner of the IP it gives (its dhcp: claim, through the resolver). Switch mode keeps
// its own list (`ipop:<ns>:switch`, IP 0.0.0.0): there the signature is the whole check. A record can therefore never change
// whose an IP is; it only says who is up. Members that left cleanly publish a "down" record
// for their incarnation, so they drop out at the others' next refresh instead of at TTL.
import type { Address } from '../address/address.js';
import type { Dht } from '../dht/dht.js';
import type { Registrations } from '../dht/registration.js';
import { MEMBERS_TTL, memberRecord, readMemberRecords, type Member, type MemberRecord } from './mapping.js';

/** What the member list uses: the DHT, the registration service and a verified IP → owner lookup. */
export interface MemberListComponents {
  dht: Pick<Dht, 'get' | 'put'>;
  registrations: Pick<Registrations, 'register' | 'unregister'>;
  /** Router mode: the IP's verified owner; absent (switch mode): records name no IP. */
  resolve?(ip: number): Promise<Address | null>;
}

export class MemberList {
  /** Records read, and those refused: not the IP's verified owner, or marked down; first puts of our record that failed (retried). */
  readonly stats = { refreshes: 0, failures: 0, notOwner: 0, down: 0, joinRetries: 0 };
  /** Verified members other than ourselves, as of the last refresh. */
  members: Member[] = [];
  /** Nodes whose latest record says they left cleanly, as of the last refresh. */
  departed = new Set<string>();
  private record?: Uint8Array;

  constructor(private readonly c: MemberListComponents, private readonly key: Uint8Array, private readonly self: Member, private readonly incarnation: number) {}

  /**
   * Publishes our "up" record and keeps it alive (re-put every TTL/2). A first put that reaches
   * no majority of replicas (a DHT still settling, replicas behind NATs) does not stop the VPN:
   * the registration service has logged it and retries, and the others list us once it lands.
   */
  async join(): Promise<void> {
    this.record = memberRecord({ ...this.self, incarnation: this.incarnation, up: true });
    try { await this.c.registrations.register(this.key, this.record, MEMBERS_TTL, false); } catch { this.stats.joinRetries++; }
  }

  /** Stops refreshing our record and publishes "down" for this incarnation. */
  async leave(): Promise<void> {
    if (!this.record) return;
    this.c.registrations.unregister(this.key, this.record);
    this.record = undefined;
    await this.c.dht.put(this.key, memberRecord({ ...this.self, incarnation: this.incarnation, up: false }), MEMBERS_TTL);
  }

  /** Re-reads the records; keeps the previous list when the DHT cannot be read. */
  async refresh(): Promise<Member[]> {
    let records: MemberRecord[];
    try { records = await readMemberRecords(this.c.dht, this.key); } catch { this.stats.failures++; return this.members; }
    this.stats.refreshes++;
    this.departed = new Set(records.filter((r) => !r.up).map((r) => r.address.key));
    const checked = await Promise.all(records.map(async (r) => {
      if (r.address.equals(this.self.address)) return undefined;
      if (!r.up) { this.stats.down++; return undefined; }
      if (this.c.resolve) {
        const owner = await this.c.resolve(r.ip).catch(() => null);
        if (!owner || !owner.equals(r.address)) { this.stats.notOwner++; return undefined; }
      }
      return { address: r.address, ip: r.ip };
    }));
    this.members = checked.filter((m): m is Member => m !== undefined);
    return this.members;
  }
}
