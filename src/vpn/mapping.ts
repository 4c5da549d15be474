// The VPN's entries in the DHT:
//   dhcp:<ns>:<ip>      → owner's node address (a signed claim, made with Create, kept alive
//                         by the registration service; a different claimer is refused)
//   dhcp:<ns>           → the namespace's DHCPConfig XML (a signed claim of whoever set it)
//   ipop:<ns>:members   → "<node address> <ip> <incarnation> up|down" per member (multi-value
//                         Put, refreshed, signed by the node it names): who to connect to with
//                         on-demand off, whom get_state lists, and who gets broadcasts. A record
//                         never decides whose an IP is: only the dhcp: claim does (see members.ts).
import { Address } from '../address/address.js';
import type { Dht } from '../dht/dht.js';
import { DhtError } from '../dht/limits.js';
import type { Registrations } from '../dht/registration.js';
import { decodeXml } from '../config/xml-wellformed.js';
import { ipToString as ipText, parseIp } from './frames.js';

/** A member record lives this long unless refreshed (every TTL/2): a crashed member leaves within it. */
export const MEMBERS_TTL = 120;
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => Buffer.from(b).toString('utf8');

export class VpnError extends Error { override name = 'VpnError'; }


export const claimKey = (ns: string, ip: number) => enc(`dhcp:${ns}:${ipText(ip)}`);
export const settingsKey = (ns: string) => enc(`dhcp:${ns}`);
export const membersKey = (ns: string) => enc(`ipop:${ns}:members`);
/** Switch mode's members: "<node address> 0.0.0.0 <incarnation> up|down", signed by that node. */
export const switchMembersKey = (ns: string) => enc(`ipop:${ns}:switch`);

/** The node that owns an IP: only a claim whose signer is the address it names counts. */
export async function lookupOwner(dht: Dht, ns: string, ip: number): Promise<Address | null> {
  for (const v of await dht.get(claimKey(ns, ip))) {
    if (!v.claimer) continue;
    try {
      const a = Address.parse(dec(v.value));
      if (a.equals(v.claimer)) return a;
    } catch { /* not an address: ignore */ }
  }
  return null;
}

/**
 * Claims an IP for this node and keeps the claim alive while the node lives. A live claim of
 * another node makes this fail, naming the owner.
 */
export async function claimAddress(dht: Dht, regs: Registrations, ns: string, ip: number, self: Address, ttl: number): Promise<void> {
  try {
    await regs.register(claimKey(ns, ip), enc(self.key), ttl, true);
  } catch (e) {
    regs.unregister(claimKey(ns, ip), enc(self.key));
    if (e instanceof DhtError && /already exists/.test(e.message)) {
      const owner = await lookupOwner(dht, ns, ip).catch(() => null);
      throw new VpnError(`${ipText(ip)} in namespace ${ns} is already claimed by ${owner?.key ?? 'another node'}`);
    }
    throw new VpnError(`cannot claim ${ipText(ip)} in namespace ${ns}: ${(e as Error).message}`);
  }
}

export function releaseAddress(regs: Registrations, ns: string, ip: number, self: Address): void {
  // Claims cannot be deleted from the DHT; the lease simply runs out unless renewed.
  regs.unregister(claimKey(ns, ip), enc(self.key));
}

export interface Member { address: Address; ip: number }

/**
 * A member record as stored: who (the signer must be that node), which IP it says it holds,
 * its incarnation (the start time of that run of the node, ms) and whether it is up or has
 * left cleanly. A later incarnation supersedes earlier ones, so a replayed "down" of an old run
 * cannot take a restarted member out.
 */
export interface MemberRecord extends Member { incarnation: number; up: boolean }

export function memberRecord(r: MemberRecord): Uint8Array {
  return enc(`${r.address.key} ${ipText(r.ip)} ${r.incarnation} ${r.up ? 'up' : 'down'}`);
}

/** The records whose signer is the node they name: the latest incarnation of each node and IP. */
export async function readMemberRecords(dht: Pick<Dht, 'get'>, key: Uint8Array): Promise<MemberRecord[]> {
  const latest = new Map<string, MemberRecord>();
  for (const v of await dht.get(key)) {
    const r = parseMemberRecord(v.value);
    // Only a record signed by the key behind the address it names counts.
    if (!r || !v.claimer || !v.claimer.equals(r.address)) continue;
    const id = `${r.address.key} ${r.ip}`;
    const had = latest.get(id);
    if (!had || r.incarnation > had.incarnation || (r.incarnation === had.incarnation && !r.up)) latest.set(id, r);
  }
  return [...latest.values()];
}

export function parseMemberRecord(b: Uint8Array): MemberRecord | undefined {
  const m = /^(brunet:node:\S+) (\S+)(?: (\d{1,15}) (up|down))?$/.exec(dec(b));
  if (!m) return undefined;
  try {
    return { address: Address.parse(m[1]!), ip: parseIp(m[2]!), incarnation: Number(m[3] ?? 0), up: m[4] !== 'down' };
  } catch { return undefined; }
}

/** The namespace's DHCP settings as stored (the oldest genuine claim wins). */
export async function readSettings(dht: Dht, ns: string): Promise<string | null> {
  const vals = await dht.get(settingsKey(ns));
  const v = vals.find((x) => x.claimer);
  return v ? decodeXml(v.value, `dhcp:${ns}`) : null; // strict UTF-8: throws XmlSyntaxError
}
