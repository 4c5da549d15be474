// A virtual network's address plan: Brunet's DHCPConfig XML (Dhcp.xsd), kept in the DHT
// under dhcp:<namespace> as whitespace-free XML, and the range arithmetic built on it.
import type { RandomSource } from '../util/random.js';
import { ConfigError, children, rejectUnknown, single, text, type XNode } from '../config/xml-helpers.js';
import { parseXml } from '../config/xml-wellformed.js';
import { inSubnet, ipToString, isContiguousMask, maskToPrefix, parseIp, subnetBroadcast } from './frames.js';

export { ConfigError } from '../config/xml-helpers.js';

export interface ReservedRange { base: number; mask: number }

export interface DhcpConfig {
  namespace: string;
  netmask: number;
  ipBase: number;
  /** Seconds. */
  leaseTime: number;
  reserved: ReservedRange[];
}

/** DHT values are capped at 1 KB, so the serialised config must fit. */
export const DHCP_CONFIG_MAX_BYTES = 1024;
export const DEFAULT_LEASE_TIME = 3600;
/** Brunet's leases are DHT TTLs; keep them within what a DHT will store (a week). */
export const MAX_LEASE_TIME = 7 * 86400;
export const RANDOM_DRAWS = 100;

export const dhcpConfigKey = (namespace: string): string => `dhcp:${namespace}`;

/** Why a namespace is unusable, or undefined; it becomes part of DHT keys and DNS names. */
export function namespaceProblem(ns: string): string | undefined {
  if (ns === '') return 'must not be empty';
  if (ns !== ns.trim()) return 'must not start or end with whitespace';
  if (/[\u0000-\u001f\u007f]/.test(ns)) return 'must not contain control characters';
  return undefined;
}

function ip(node: XNode, path: string): number {
  const s = text(node, path);
  try {
    return parseIp(s);
  } catch (e) {
    throw new ConfigError(path, (e as Error).message);
  }
}

function mask(node: XNode, path: string): number {
  const m = ip(node, path);
  if (!isContiguousMask(m)) throw new ConfigError(path, `netmask ${ipToString(m)} is not contiguous (ones must precede zeros)`);
  return m;
}

function aligned(base: number, m: number, path: string, maskPath: string): void {
  if ((base & ~m) !== 0) {
    throw new ConfigError(path, `${ipToString(base)} is not aligned to ${maskPath} ${ipToString(m)} (network is ${ipToString((base & m) >>> 0)})`);
  }
}

function parseReserved(node: XNode): ReservedRange[] {
  const P = 'DHCPConfig/ReservedIPs';
  const { kids } = children(node, P);
  rejectUnknown(kids, ['ReservedIP'], P);
  return (kids['ReservedIP'] ?? []).map((r, i) => {
    const path = `${P}/ReservedIP[${i + 1}]`;
    const { kids: rk } = children(r, path);
    rejectUnknown(rk, ['IPBase', 'Mask'], path);
    const b = single(rk, 'IPBase', `${path}/`);
    const m = single(rk, 'Mask', `${path}/`);
    if (b === undefined) throw new ConfigError(`${path}/IPBase`, 'missing (required)');
    if (m === undefined) throw new ConfigError(`${path}/Mask`, 'missing (required)');
    const base = ip(b, `${path}/IPBase`);
    const rm = mask(m, `${path}/Mask`);
    aligned(base, rm, `${path}/IPBase`, 'Mask');
    return { base, mask: rm };
  });
}

/** `source` names the input in syntax errors (a file, or the DHT key it came from). */
export function parseDhcpConfig(xml: string, source = 'DHCPConfig'): DhcpConfig {
  if (xml.replace(/^\uFEFF/, '').trim() === '') throw new ConfigError('DHCPConfig', 'no root element found (is the file empty?)');
  const doc = parseXml(xml, source);
  const roots = Object.keys(doc);
  if (roots.length === 0) throw new ConfigError('DHCPConfig', 'no root element found (is the file empty?)');
  if (roots.length > 1 || (doc[roots[0]!]?.length ?? 0) > 1) throw new ConfigError('DHCPConfig', `more than one root element (${roots.join(', ')})`);
  if (roots[0] !== 'DHCPConfig') throw new ConfigError('DHCPConfig', `root element must be <DHCPConfig>, found <${roots[0]}>`);

  const P = 'DHCPConfig';
  const { kids } = children(doc[P]![0]!, P);
  rejectUnknown(kids, ['Namespace', 'Netmask', 'IPBase', 'LeaseTime', 'ReservedIPs'], P);
  const req = (name: string, what: string): XNode => {
    const n = single(kids, name, `${P}/`);
    if (n === undefined) throw new ConfigError(`${P}/${name}`, `missing (required: ${what})`);
    return n;
  };

  const namespace = text(req('Namespace', 'the IPOP namespace this address plan belongs to'), `${P}/Namespace`);
  const bad = namespaceProblem(namespace);
  if (bad !== undefined) throw new ConfigError(`${P}/Namespace`, bad);
  const netmask = mask(req('Netmask', 'e.g. 255.255.255.0'), `${P}/Netmask`);
  const prefix = maskToPrefix(netmask);
  if (prefix < 1 || prefix > 30) {
    throw new ConfigError(`${P}/Netmask`, `/${prefix} leaves no room for a server and clients (use /1 to /30)`);
  }
  const ipBase = ip(req('IPBase', 'the network address, e.g. 10.250.0.0'), `${P}/IPBase`);
  aligned(ipBase, netmask, `${P}/IPBase`, 'Netmask');

  let leaseTime = DEFAULT_LEASE_TIME;
  const lt = single(kids, 'LeaseTime', `${P}/`);
  if (lt !== undefined) {
    const s = text(lt, `${P}/LeaseTime`);
    if (!/^[+-]?\d+$/.test(s)) throw new ConfigError(`${P}/LeaseTime`, `expected a whole number of seconds, got ${JSON.stringify(s)}`);
    leaseTime = Number(s);
    if (leaseTime <= 0) throw new ConfigError(`${P}/LeaseTime`, `must be positive, got ${s}`);
    if (leaseTime > MAX_LEASE_TIME) throw new ConfigError(`${P}/LeaseTime`, `${s} s exceeds the maximum of ${MAX_LEASE_TIME} s`);
  }
  const rn = single(kids, 'ReservedIPs', `${P}/`);
  return { namespace, netmask, ipBase, leaseTime, reserved: rn === undefined ? [] : parseReserved(rn) };
}

const escapeXml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');

/** The whitespace-free form stored in the DHT; throws ConfigError if over 1024 bytes. */
export function serializeDhcpConfig(c: DhcpConfig): string {
  const bad = namespaceProblem(c.namespace);
  if (bad !== undefined) throw new ConfigError('DHCPConfig/Namespace', bad);
  let s = `<DHCPConfig><Namespace>${escapeXml(c.namespace)}</Namespace>`
    + `<Netmask>${ipToString(c.netmask)}</Netmask><IPBase>${ipToString(c.ipBase)}</IPBase>`
    + `<LeaseTime>${c.leaseTime}</LeaseTime>`;
  if (c.reserved.length > 0) {
    s += '<ReservedIPs>';
    for (const r of c.reserved) s += `<ReservedIP><IPBase>${ipToString(r.base)}</IPBase><Mask>${ipToString(r.mask)}</Mask></ReservedIP>`;
    s += '</ReservedIPs>';
  }
  s += '</DHCPConfig>';
  const n = Buffer.byteLength(s, 'utf8');
  if (n > DHCP_CONFIG_MAX_BYTES) {
    throw new ConfigError('DHCPConfig', `serialised form is ${n} bytes, over the ${DHCP_CONFIG_MAX_BYTES}-byte DHT value limit (fewer ReservedIPs or a shorter Namespace)`);
  }
  return s;
}

/**
 * Which addresses of the subnet clients may lease. Reserved: the network address, the
 * server (network + 1; Brunet sets the last byte to 1, the same thing for any base ending
 * in .0), the subnet broadcast, and the configured ReservedIPs.
 */
export class DhcpRange {
  readonly network: number;
  readonly netmask: number;
  readonly prefix: number;
  readonly broadcast: number;
  readonly serverIp: number;
  /** Addresses in the subnet, reserved ones included. */
  readonly size: number;
  readonly reserved: readonly ReservedRange[];

  constructor(c: Pick<DhcpConfig, 'ipBase' | 'netmask'> & { reserved?: readonly ReservedRange[] }) {
    if (!isContiguousMask(c.netmask)) throw new RangeError(`netmask ${ipToString(c.netmask)} is not contiguous`);
    this.prefix = maskToPrefix(c.netmask);
    if (this.prefix < 1 || this.prefix > 30) throw new RangeError(`/${this.prefix} has no assignable addresses`);
    this.netmask = c.netmask >>> 0;
    this.network = (c.ipBase & c.netmask) >>> 0;
    this.broadcast = subnetBroadcast(this.network, this.netmask);
    this.serverIp = (this.network + 1) >>> 0;
    this.size = 2 ** (32 - this.prefix);
    this.reserved = (c.reserved ?? []).map((r) => ({ base: (r.base & r.mask) >>> 0, mask: r.mask >>> 0 }));
  }

  static fromConfig(c: DhcpConfig): DhcpRange { return new DhcpRange(c); }

  contains(ip: number): boolean { return inSubnet(ip, this.network, this.netmask); }

  isReserved(ip: number): boolean {
    const a = ip >>> 0;
    if (a === this.network || a === this.serverIp || a === this.broadcast) return true;
    return this.reserved.some((r) => inSubnet(a, r.base, r.mask));
  }

  isAssignable(ip: number): boolean {
    return Number.isInteger(ip) && ip >= 0 && ip <= 0xffffffff && this.contains(ip) && !this.isReserved(ip);
  }

  /** A uniformly drawn assignable address, or undefined after `draws` misses (Brunet: 100). */
  randomAssignable(random: RandomSource, draws = RANDOM_DRAWS, taken?: (ip: number) => boolean): number | undefined {
    for (let i = 0; i < draws; i++) {
      const ip = (this.network + random.int(this.size)) >>> 0;
      if (this.isAssignable(ip) && !(taken?.(ip) ?? false)) return ip;
    }
    return undefined;
  }

  /** The lowest assignable address not `taken`, scanning at most `limit` addresses. */
  firstFree(taken: (ip: number) => boolean = () => false, limit = this.size): number | undefined {
    const n = Math.min(limit, this.size);
    for (let i = 0; i < n; i++) {
      const ip = (this.network + i) >>> 0;
      if (this.isAssignable(ip) && !taken(ip)) return ip;
    }
    return undefined;
  }

  toString(): string { return `${ipToString(this.network)}/${this.prefix}`; }
}
