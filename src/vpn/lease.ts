// Getting this node's virtual IP: a static address is claimed as configured; otherwise one is
// allocated from the namespace's DHCP range (settings under `dhcp:<ns>` in the DHT) by
// Create, trying the address this node had last time first (Brunet's DhtDhcpServer).
import { readFileSync, writeFileSync } from 'node:fs';
import type { Address } from '../address/address.js';
import type { IpopConfig } from '../config/ipop-config.js';
import type { Dht } from '../dht/dht.js';
import type { Registrations } from '../dht/registration.js';
import type { Logger } from '../util/log.js';
import type { RandomSource } from '../util/random.js';
import { readXmlFile, XmlSyntaxError } from '../config/xml-wellformed.js';
import { DhcpRange, parseDhcpConfig, type DhcpConfig } from './dhcp-config.js';
import { ipToString, parseIp } from './frames.js';
import { claimAddress, readSettings, settingsKey, VpnError } from './mapping.js';

export interface Lease { ip: number; prefix: number; leaseTime: number; range?: DhcpRange }

export interface LeaseContext { dht: Dht; registrations: Registrations; self: Address; cfg: IpopConfig; random: RandomSource; log: Logger; leaseFile?: string }

const DHCP_ATTEMPTS = 8;

export async function acquireLease(c: LeaseContext): Promise<Lease> {
  const ns = c.cfg.namespace;
  if (c.cfg.address) {
    const ip = parseIp(c.cfg.address.ip);
    await claimAddress(c.dht, c.registrations, ns, ip, c.self, c.cfg.leaseTime);
    return { ip, prefix: c.cfg.address.prefix, leaseTime: c.cfg.leaseTime };
  }
  const settings = await namespaceSettings(c);
  const range = DhcpRange.fromConfig(settings);
  const candidates: number[] = [];
  const previous = readPrevious(c.leaseFile);
  if (previous !== undefined && range.isAssignable(previous)) candidates.push(previous);
  const tried = new Set<number>();
  let lastError = '';
  for (let i = 0; i < DHCP_ATTEMPTS; i++) {
    const ip = candidates.shift() ?? range.randomAssignable(c.random, 100, (x) => tried.has(x));
    if (ip === undefined) break;
    tried.add(ip);
    try {
      await claimAddress(c.dht, c.registrations, ns, ip, c.self, settings.leaseTime);
      if (c.leaseFile) writeFileSync(c.leaseFile, `${ipToString(ip)}\n`);
      c.log.info(`leased ${ipToString(ip)} from ${range} in namespace ${ns}`);
      return { ip, prefix: range.prefix, leaseTime: settings.leaseTime, range };
    } catch (e) {
      lastError = (e as Error).message;
      c.log.info(`DHCP: ${lastError}; trying another address`);
    }
  }
  throw new VpnError(`no free address in ${range} for namespace ${ns} after ${tried.size} attempts (last: ${lastError})`);
}

/** The namespace's DHCP settings: our DHCPConfigFile if given (published too), else the DHT's (the first claimer's). */
async function namespaceSettings(c: LeaseContext): Promise<DhcpConfig> {
  const ns = c.cfg.namespace;
  if (c.cfg.dhcpConfigFile) {
    let xml: string;
    try { xml = readXmlFile(c.cfg.dhcpConfigFile); } catch (e) {
      throw new VpnError(`IpopConfig/DHCPConfigFile: ${(e as Error).message}`);
    }
    const own = checked(xml, ns, c.cfg.dhcpConfigFile);
    try {
      // Kept alive while we live; the first publisher owns the key (it is a signed claim).
      await c.registrations.register(settingsKey(ns), new TextEncoder().encode(xml.trim()), own.leaseTime * 4, false);
    } catch (e) {
      // Someone else's settings (perhaps an outsider's, claimed first) never override our own file.
      const stored = await readSettings(c.dht, ns).catch(() => null);
      c.log.warn(`publishing the DHCP settings of ${ns}: ${(e as Error).message}; ${stored !== null && stored.trim() !== xml.trim() ? 'the DHT holds different ones; ' : ''}using ${c.cfg.dhcpConfigFile}`);
    }
    return own;
  }
  let stored: string | null;
  try { stored = await readSettings(c.dht, ns); } catch (e) {
    if (e instanceof XmlSyntaxError) throw new VpnError(`DHCP settings in dhcp:${ns}: ${e.message}`);
    throw e;
  }
  if (stored === null) {
    throw new VpnError(`namespace ${ns} has no DHCP settings in the DHT: give this node a static <AddressData>, a <DHCPConfigFile>, or store them with bput dhcp:${ns} --input dhcp.config.xml`);
  }
  return checked(stored, ns, `dhcp:${ns}`);
}

function checked(xml: string, ns: string, where: string): DhcpConfig {
  let d: DhcpConfig;
  try { d = parseDhcpConfig(xml, where); } catch (e) { throw new VpnError(`DHCP settings in ${where}: ${(e as Error).message}`); }
  if (d.namespace !== ns) throw new VpnError(`DHCP settings in ${where} are for namespace ${d.namespace}, not ${ns}`);
  return d;
}

function readPrevious(file: string | undefined): number | undefined {
  if (!file) return undefined;
  try { return parseIp(readFileSync(file, 'utf8').trim()); } catch { return undefined; }
}
