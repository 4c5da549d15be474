// The IPOP section: <IpopConfig> inside NodeConfig, or Brunet's separate ipop.config file
// (same element as its root). Brunet's elements we do not implement are accepted and
// reported, so an old ipop.config still loads; our own additions are documented in
// config/node.config.xml.
import { isIPv4, isIPv6 } from 'node:net';
import { children, ConfigError, int, parseBool, parsePort, rejectUnknown, single, text, type XChildren, type XNode } from './xml-helpers.js';
import { parseXml, readXmlFile, XmlSyntaxError } from './xml-wellformed.js';

export interface OnDemandConfig {
  /** false: every member of the namespace is connected right away (IPOP's on-demand_connection). */
  enabled: boolean;
  /** Bytes per second (sent + received) that open a direct connection and keep it (threshold_on_demand). */
  threshold: number;
  /** Seconds below the threshold after which an on-demand connection is closed (ttl_on_demand). */
  idleTimeout: number;
}

/**
 * router: IP packets routed to members (IPOP's GroupVPN); switch: Ethernet frames switched across
 * the overlay; social: SocialVPN (not an IpopConfig/Mode value: socialvpn sets it from <SocialVpnConfig>).
 */
export type IpopMode = 'router' | 'switch' | 'social';

export interface IpopConfig {
  namespace: string;
  mode: IpopMode;
  device: string;
  /** Switch mode only: the Linux bridge the TAP joins (a port of it, next to the hosts it connects). */
  bridge?: string;
  /** Switch mode: seconds a learned MAC (and ARP) entry lives without traffic from it. */
  macAgeSeconds: number;
  /**
   * Static address. Router mode: absent means the address comes from the namespace's DHCP range.
   * Switch mode: absent means this host holds no address on the VPN and nothing is leased (the
   * bridged hosts hold the IPs).
   */
  address?: { ip: string; prefix: number };
  /**
   * The interface this host's VPN address goes on: router mode the TAP (static or leased);
   * switch mode the Bridge if named, else the TAP, and undefined without a static address.
   */
  addressDevice?: string;
  hostname?: string;
  /** TTL of this node's `dhcp:<ns>:<ip>` claim for static addresses; renewed at half of it. */
  leaseTime: number;
  /** 0 = derived from the underlay interface's MTU (src/vpn/mtu.ts). */
  mtu: number;
  onDemand: OnDemandConfig;
  /** IPOP's local get_state UDP port on 127.0.0.1; 0 = off. */
  getStatePort: number;
  /** Broadcast and multicast go as unicast copies to every member. */
  multicast: boolean;
  /** TCP segmentation and checksum offload on the TAP: super-packets cross the overlay whole. */
  offload: boolean;
  /**
   * IpopConfig/FastPath (default true): frames are sealed where the TAP read them (headers and
   * tag written into room reserved around each frame) and the UDP listener may batch its I/O.
   * false: the reference path (a copy per header, one datagram per system call). Same wire
   * format either way: nodes with and without it interoperate.
   */
  fastPath: boolean;
  /**
   * IpopConfig/NativeFlows (default false; router mode with FastPath): a native thread reads the
   * TAP and the UDP socket and seals and opens the frames of established direct flows itself
   * (src/vpn/native-path.ts). Same wire format: members with and without it interoperate.
   */
  nativeFlows: boolean;
  /** DHCPConfig XML this node publishes under `dhcp:<ns>` (and re-publishes while it lives). */
  dhcpConfigFile?: string;
  /**
   * The IPv6 /64 of the namespace ('auto': derived from the namespace; '': IPv6 off). Members
   * get prefix::<their IPv4> (see src/vpn/ipv6.ts).
   */
  ipv6Prefix: string;
  /** Interfaces whose addresses the overlay never advertises (IPOP's network_ignore_list); the TAP always is. */
  networkIgnoreList: string[];
  /** Brunet elements that were present but have no effect here. */
  ignored: string[];
}

export const DEFAULT_ON_DEMAND: OnDemandConfig = { enabled: true, threshold: 128, idleTimeout: 240 };
export const DEFAULT_GET_STATE_PORT = 5800;
export const DEFAULT_DEVICE = 'tapipop';
export const DEFAULT_MAC_AGE_SECONDS = 300;
const MODES: readonly IpopMode[] = ['router', 'switch'];

const BRUNET_UNSUPPORTED = ['EndToEndSecurity', 'DHCPPort', 'AllowStaticAddresses', 'GroupVPN', 'Dns'];
const KNOWN = ['IpopNamespace', 'VirtualNetworkDevice', 'AddressData', 'EnableMulticast', 'LeaseTime', 'MTU', 'OnDemand',
  'GetStatePort', 'DHCPConfigFile', 'NetworkIgnoreList', 'IPv6Prefix', 'Offload', 'FastPath', 'NativeFlows', 'Mode', 'Bridge', 'MacAgeSeconds', ...BRUNET_UNSUPPORTED];

/** Netmask as dotted quad (Brunet) or prefix length ("24" or "/24"). */
export function netmaskToPrefix(s: string, path: string): number {
  const m = /^\/?(\d{1,2})$/.exec(s);
  if (m) {
    const p = Number(m[1]);
    if (p < 1 || p > 30) throw new ConfigError(path, `prefix length ${p} out of range 1..30`);
    return p;
  }
  if (!isIPv4(s)) throw new ConfigError(path, `expected a netmask such as 255.255.255.0, got ${JSON.stringify(s)}`);
  const v = s.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const prefix = 32 - Math.log2(2 ** 32 - v);
  if (!Number.isInteger(prefix) || prefix < 1 || prefix > 30) throw new ConfigError(path, `${s} is not a contiguous netmask between /1 and /30`);
  return prefix;
}

function parseAddressData(node: XNode, out: IpopConfig): void {
  const P = 'IpopConfig/AddressData';
  const { kids } = children(node, P);
  rejectUnknown(kids, ['IPAddress', 'Netmask', 'Hostname', 'EthernetAddress'], P);
  const get = (n: string) => single(kids, n, `${P}/`);
  const ip = get('IPAddress'), mask = get('Netmask'), host = get('Hostname');
  if (get('EthernetAddress') !== undefined) out.ignored.push('AddressData/EthernetAddress');
  if (host !== undefined && text(host, `${P}/Hostname`) !== '') out.hostname = text(host, `${P}/Hostname`);
  const ipText = ip === undefined ? '' : text(ip, `${P}/IPAddress`);
  if (ipText === '') {
    if (mask !== undefined && text(mask, `${P}/Netmask`) !== '') throw new ConfigError(`${P}/Netmask`, 'given without an IPAddress (omit both to use DHCP)');
    return;
  }
  if (!isIPv4(ipText)) throw new ConfigError(`${P}/IPAddress`, `not an IPv4 address: ${JSON.stringify(ipText)}`);
  if (mask === undefined) throw new ConfigError(`${P}/Netmask`, 'missing (required with a static IPAddress)');
  const prefix = netmaskToPrefix(text(mask, `${P}/Netmask`), `${P}/Netmask`);
  const unusable = unusableHostAddress(ipText, prefix);
  if (unusable) throw new ConfigError(`${P}/IPAddress`, `${ipText} is ${unusable}, not a host address`);
  out.address = { ip: ipText, prefix };
}

/** Why `ip` in a /prefix subnet cannot be a member's address, or undefined if it can. */
export function unusableHostAddress(ip: string, prefix: number): string | undefined {
  const v = ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const first = v >>> 24;
  if (first === 127) return 'a loopback address (127.0.0.0/8)';
  if (first >= 224 && first < 240) return 'a multicast address (224.0.0.0/4)';
  if (first >= 240) return 'a reserved or broadcast address (240.0.0.0/4)';
  if (first === 0) return 'in 0.0.0.0/8 ("this network")';
  const host = v % 2 ** (32 - prefix);
  if (host === 0) return `the network address of its /${prefix}`;
  if (host === 2 ** (32 - prefix) - 1) return `the broadcast address of its /${prefix}`;
  return undefined;
}

/**
 * A Linux interface name as the kernel accepts it (dev_valid_name): 1-15 bytes, not "." or
 * "..", no '/', ':' or white space; here also only letters, digits, '_', '.', '-'.
 */
export function interfaceNameProblem(name: string): string | undefined {
  if (name === '.' || name === '..') return `${JSON.stringify(name)} is not a valid interface name (the kernel refuses "." and "..")`;
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) return `${JSON.stringify(name)} is not a valid interface name (1-15 letters, digits, _ . -)`;
  return undefined;
}

function parseOnDemand(node: XNode): OnDemandConfig {
  const P = 'IpopConfig/OnDemand';
  const { kids } = children(node, P);
  rejectUnknown(kids, ['Enabled', 'Threshold', 'IdleTimeout'], P);
  const get = (n: string) => single(kids, n, `${P}/`);
  const o = { ...DEFAULT_ON_DEMAND };
  const en = get('Enabled'), th = get('Threshold'), idle = get('IdleTimeout');
  if (en !== undefined) o.enabled = parseBool(text(en, `${P}/Enabled`), `${P}/Enabled`);
  if (th !== undefined) o.threshold = int(th, `${P}/Threshold`, 1, 1e9);
  if (idle !== undefined) o.idleTimeout = int(idle, `${P}/IdleTimeout`, 1, 86400 * 30);
  return o;
}

export function parseIpop(node: XNode): IpopConfig {
  const P = 'IpopConfig';
  const { kids } = children(node, P);
  rejectUnknown(kids, KNOWN, P);
  const get = (n: string) => single(kids, n, `${P}/`);
  const ns = get('IpopNamespace');
  const namespace = ns === undefined ? '' : text(ns, `${P}/IpopNamespace`);
  if (namespace === '') throw new ConfigError(`${P}/IpopNamespace`, 'missing (required: the virtual network this node joins)');
  if (/[\s:]/.test(namespace)) throw new ConfigError(`${P}/IpopNamespace`, `must not contain spaces or ':' (${JSON.stringify(namespace)})`);
  const dev = get('VirtualNetworkDevice');
  const device = dev === undefined ? DEFAULT_DEVICE : text(dev, `${P}/VirtualNetworkDevice`);
  const badName = interfaceNameProblem(device);
  if (badName) throw new ConfigError(`${P}/VirtualNetworkDevice`, badName);
  const cfg: IpopConfig = {
    namespace, mode: 'router', device, macAgeSeconds: DEFAULT_MAC_AGE_SECONDS, leaseTime: 3600, mtu: 0, onDemand: { ...DEFAULT_ON_DEMAND },
    getStatePort: DEFAULT_GET_STATE_PORT, multicast: false, offload: true, fastPath: true, nativeFlows: false, ipv6Prefix: 'auto', networkIgnoreList: [], ignored: [],
  };
  parseSwitching(get, cfg);
  const ad = get('AddressData');
  if (ad !== undefined) parseAddressData(ad, cfg);
  cfg.addressDevice = cfg.mode === 'router' ? device : cfg.address ? cfg.bridge ?? device : undefined;
  const lt = get('LeaseTime');
  if (lt !== undefined) cfg.leaseTime = int(lt, `${P}/LeaseTime`, 60, 7 * 86400);
  const mtu = get('MTU');
  if (mtu !== undefined && text(mtu, `${P}/MTU`) !== '0') cfg.mtu = int(mtu, `${P}/MTU`, 576, 9000);
  const od = get('OnDemand');
  if (od !== undefined) cfg.onDemand = parseOnDemand(od);
  const gs = get('GetStatePort');
  if (gs !== undefined) cfg.getStatePort = parsePort(text(gs, `${P}/GetStatePort`), `${P}/GetStatePort`, 0);
  const mc = get('EnableMulticast');
  if (mc !== undefined) cfg.multicast = parseBool(text(mc, `${P}/EnableMulticast`), `${P}/EnableMulticast`);
  const off = get('Offload');
  if (off !== undefined) cfg.offload = parseBool(text(off, `${P}/Offload`), `${P}/Offload`);
  const fp = get('FastPath');
  if (fp !== undefined) cfg.fastPath = parseBool(text(fp, `${P}/FastPath`), `${P}/FastPath`);
  const nf = get('NativeFlows');
  if (nf !== undefined) cfg.nativeFlows = parseBool(text(nf, `${P}/NativeFlows`), `${P}/NativeFlows`);
  if (cfg.nativeFlows && !cfg.fastPath) throw new ConfigError(`${P}/NativeFlows`, 'NativeFlows needs FastPath true (the thread borrows the batched UDP socket)');
  if (cfg.nativeFlows && cfg.mode !== 'router') throw new ConfigError(`${P}/NativeFlows`, 'NativeFlows is for router mode only');
  const dc = get('DHCPConfigFile');
  if (dc !== undefined && text(dc, `${P}/DHCPConfigFile`) !== '') cfg.dhcpConfigFile = text(dc, `${P}/DHCPConfigFile`);
  const v6 = get('IPv6Prefix');
  if (v6 !== undefined) cfg.ipv6Prefix = parseIpv6Prefix(text(v6, `${P}/IPv6Prefix`), `${P}/IPv6Prefix`);
  const nil = get('NetworkIgnoreList');
  if (nil !== undefined) cfg.networkIgnoreList = parseDeviceList(nil, `${P}/NetworkIgnoreList`);
  for (const k of BRUNET_UNSUPPORTED) if (kids[k]) cfg.ignored.push(k);
  return cfg;
}

/** Mode, Bridge and MacAgeSeconds: a Bridge needs switch mode. */
function parseSwitching(get: (n: string) => XNode | undefined, cfg: IpopConfig): void {
  const P = 'IpopConfig';
  const mode = get('Mode');
  if (mode !== undefined) {
    const m = text(mode, `${P}/Mode`);
    if (!(MODES as readonly string[]).includes(m)) throw new ConfigError(`${P}/Mode`, `expected router or switch, got ${JSON.stringify(m)}`);
    cfg.mode = m as IpopMode;
  }
  const br = get('Bridge');
  if (br !== undefined && text(br, `${P}/Bridge`) !== '') {
    const name = text(br, `${P}/Bridge`);
    const bad = interfaceNameProblem(name);
    if (bad) throw new ConfigError(`${P}/Bridge`, bad);
    if (cfg.mode !== 'switch') throw new ConfigError(`${P}/Bridge`, 'Bridge needs Mode switch (a router-mode TAP routes IP and is no bridge port)');
    if (name === cfg.device) throw new ConfigError(`${P}/Bridge`, `${name} is the TAP itself (VirtualNetworkDevice); name the bridge the TAP joins`);
    cfg.bridge = name;
  }
  const age = get('MacAgeSeconds');
  if (age !== undefined) cfg.macAgeSeconds = int(age, `${P}/MacAgeSeconds`, 10, 86400);
}

/** 'auto', 'off' (stored as ''), or an IPv6 prefix written as an address, optionally with /64. */
function parseIpv6Prefix(s: string, path: string): string {
  if (s === 'auto' || s === '') return 'auto';
  if (s === 'off') return '';
  const m = /^([0-9A-Fa-f:.]+?)(?:\/(\d+))?$/.exec(s);
  if (!m || !isIPv6(m[1]!)) throw new ConfigError(path, `expected auto, off or an IPv6 /64 prefix such as fd50:dbc:41f2:4a3c::, got ${JSON.stringify(s)}`);
  if (m[2] !== undefined && m[2] !== '64') throw new ConfigError(path, `the prefix must be a /64 (got /${m[2]})`);
  return m[1]!.toLowerCase();
}

function parseDeviceList(node: XNode, P: string): string[] {
  const { kids } = children(node, P);
  rejectUnknown(kids, ['Device'], P);
  return (kids['Device'] ?? []).map((d, i) => {
    const name = text(d, `${P}/Device[${i + 1}]`);
    if (!/^[A-Za-z0-9_.:-]{1,15}$/.test(name)) throw new ConfigError(`${P}/Device[${i + 1}]`, `${JSON.stringify(name)} is not a valid interface name`);
    return name;
  });
}

/** Brunet's separate ipop.config (`groupvpn --ipop FILE`). */
export function loadIpopConfig(path: string): IpopConfig {
  const xml = readXmlFile(path);
  try {
    const doc = parseXml(xml, path);
    const root = doc['IpopConfig'];
    if (!root || Object.keys(doc).length !== 1 || root.length !== 1) throw new ConfigError('IpopConfig', 'root element must be one <IpopConfig>');
    return parseIpop(root[0]!);
  } catch (e) {
    if (e instanceof ConfigError && !(e instanceof XmlSyntaxError)) throw new ConfigError(e.element, `${e.reason} (in ${path})`);
    throw e;
  }
}
