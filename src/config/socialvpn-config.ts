// The SocialVPN section: <SocialVpnConfig> inside NodeConfig (see config/socialvpn.config.xml).
//   UserKeyFile           required; the user key (relative to the config file's directory)
//   DeviceName            this device's name in <device>.<user>.svpn; default the host name
//   Subnet                this device's private subnet for friends' devices; default 172.31.0.0/16
//   VirtualNetworkDevice  the TAP; default svpn0
//   DnsEnabled            the .svpn name responder on the TAP address; default true
//   Offload               TCP segmentation/checksum offload on the TAP (super-packets translated whole); default true
//   GetStatePort          the local status port (127.0.0.1, UDP); default 5802, so a GroupVPN (5800) can run beside it
import { hostname } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { interfaceNameProblem } from './ipop-config.js';
import { children, ConfigError, parseBool, parsePort, rejectUnknown, single, text, type XNode } from './xml-helpers.js';

export interface SocialVpnConfig {
  /** The user key file: absolute when the config file's directory was known, else as written. */
  userKeyFile: string;
  deviceName: string;
  subnet: { network: string; prefix: number };
  device: string;
  dnsEnabled: boolean;
  getStatePort: number;
  offload: boolean;
}

export const DEFAULT_SOCIAL_SUBNET = { network: '172.31.0.0', prefix: 16 };
export const DEFAULT_SOCIAL_DEVICE = 'svpn0';
export const DEVICE_NAME_MAX = 63;
export const DEFAULT_SOCIAL_GET_STATE_PORT = 5802;

const KNOWN = ['UserKeyFile', 'DeviceName', 'Subnet', 'VirtualNetworkDevice', 'DnsEnabled', 'GetStatePort', 'Offload'];
const PRIVATE_RANGES: Array<{ net: number; prefix: number; text: string }> = [
  { net: 0x0a000000, prefix: 8, text: '10.0.0.0/8' },
  { net: 0xac100000, prefix: 12, text: '172.16.0.0/12' },
  { net: 0xc0a80000, prefix: 16, text: '192.168.0.0/16' },
];

/** Why `name` cannot be a device name (a DNS label: 1-63 of a-z 0-9 -, no - at either end), or undefined. */
export function deviceNameProblem(name: string): string | undefined {
  if (!/^[a-z0-9-]{1,63}$/.test(name)) return `device name ${JSON.stringify(name)} must be 1-${DEVICE_NAME_MAX} characters a-z, 0-9 or -`;
  if (name.startsWith('-') || name.endsWith('-')) return `device name ${JSON.stringify(name)} must not start or end with -`;
  return undefined;
}

/** A host name made a device name: its first label, lowercased, other characters as -; 'device' if nothing is left. */
export function deviceNameFromHostname(host: string): string {
  const label = host.split('.')[0]!.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-');
  const cut = label.slice(0, DEVICE_NAME_MAX).replace(/^-+|-+$/g, '');
  return cut === '' ? 'device' : cut;
}

const ipv4 = (s: string): number | undefined => {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const o = m.slice(1).map(Number);
  if (o.some((x, i) => x > 255 || (m[i + 1]!.length > 1 && m[i + 1]!.startsWith('0')))) return undefined;
  return o.reduce((a, x) => a * 256 + x, 0);
};

/** "a.b.c.d/p": a network-aligned /8../24 inside 10/8, 172.16/12 or 192.168/16. */
export function parseSocialSubnet(s: string, path: string): { network: string; prefix: number } {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(s);
  const v = m ? ipv4(m[1]!) : undefined;
  if (!m || v === undefined) throw new ConfigError(path, `expected a subnet such as 172.31.0.0/16, got ${JSON.stringify(s)}`);
  const prefix = Number(m[2]);
  if (prefix < 8 || prefix > 24) throw new ConfigError(path, `prefix /${prefix} out of range /8../24`);
  const hostBits = 2 ** (32 - prefix);
  if (v % hostBits !== 0) {
    const net = v - (v % hostBits);
    const dotted = [24, 16, 8, 0].map((sh) => Math.floor(net / 2 ** sh) % 256).join('.');
    throw new ConfigError(path, `${s} is not network-aligned (did you mean ${dotted}/${prefix}?)`);
  }
  const inside = PRIVATE_RANGES.find((r) => prefix >= r.prefix && Math.floor(v / 2 ** (32 - r.prefix)) === r.net / 2 ** (32 - r.prefix));
  if (!inside) throw new ConfigError(path, `${s} is not inside a private range (${PRIVATE_RANGES.map((r) => r.text).join(', ')})`);
  return { network: m[1]!, prefix };
}

/**
 * Parses <SocialVpnConfig>. `baseDir` (the config file's directory) makes UserKeyFile
 * absolute; `host` is the host name DeviceName defaults to.
 */
export function parseSocialVpn(node: XNode, baseDir?: string, host: string = hostname()): SocialVpnConfig {
  const P = 'SocialVpnConfig';
  const { kids } = children(node, P);
  rejectUnknown(kids, KNOWN, P);
  const get = (n: string): string | undefined => {
    const x = single(kids, n, `${P}/`);
    if (x === undefined) return undefined;
    const v = text(x, `${P}/${n}`);
    if (v === '') throw new ConfigError(`${P}/${n}`, 'must not be empty (omit the element for the default)');
    return v;
  };
  const keyFile = get('UserKeyFile');
  if (keyFile === undefined) throw new ConfigError(`${P}/UserKeyFile`, 'missing (required: the user key file, created by socialvpn init)');
  const dn = get('DeviceName');
  const deviceName = dn === undefined ? deviceNameFromHostname(host) : dn.toLowerCase();
  const badName = deviceNameProblem(deviceName);
  if (badName) throw new ConfigError(`${P}/DeviceName`, badName);
  const sn = get('Subnet');
  const dev = get('VirtualNetworkDevice') ?? DEFAULT_SOCIAL_DEVICE;
  const badDev = interfaceNameProblem(dev);
  if (badDev) throw new ConfigError(`${P}/VirtualNetworkDevice`, badDev);
  const dns = get('DnsEnabled');
  const gsp = get('GetStatePort');
  const off = get('Offload');
  return {
    userKeyFile: baseDir === undefined || isAbsolute(keyFile) ? keyFile : resolve(baseDir, keyFile),
    deviceName,
    subnet: sn === undefined ? { ...DEFAULT_SOCIAL_SUBNET } : parseSocialSubnet(sn, `${P}/Subnet`),
    device: dev,
    dnsEnabled: dns === undefined ? true : parseBool(dns, `${P}/DnsEnabled`),
    getStatePort: gsp === undefined ? DEFAULT_SOCIAL_GET_STATE_PORT : parsePort(gsp, `${P}/GetStatePort`, 1),
    offload: off === undefined ? true : parseBool(off, `${P}/Offload`),
  };
}
