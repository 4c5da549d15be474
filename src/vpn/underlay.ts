// The underlay interface: the host interface the overlay's packets leave by, whose MTU the
// TAP's MTU is derived from (IpopConfig/MTU 0; see mtu.ts). DevicesToBind names it outright;
// otherwise it is the device of the kernel's route to the first RemoteTA (the default route
// without one), read from /proc/net/route or /proc/net/ipv6_route. Everything is read through
// an injected reader, so tests need neither root nor particular interfaces.
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import type { NodeConfig } from '../config/node-config.js';

/** The text of a /proc or /sys file, or undefined when it cannot be read. */
export type ReadSys = (path: string) => string | undefined;

export const readSys: ReadSys = (path) => {
  try { return readFileSync(path, 'utf8'); } catch { return undefined; }
};

export type Underlay = { name: string; mtu: number; via: string } | { name?: undefined; reason: string };

/** The MTU of interface `dev` from /sys/class/net/<dev>/mtu. */
export function interfaceMtu(dev: string, read: ReadSys = readSys): number | undefined {
  const s = read(`/sys/class/net/${dev}/mtu`)?.trim();
  return s !== undefined && /^\d+$/.test(s) ? Number(s) : undefined;
}

/** Which interface the overlay uses and its MTU, or why that is not known. */
export function underlayInterface(cfg: Pick<NodeConfig, 'devicesToBind' | 'remoteTAs'>, read: ReadSys = readSys): Underlay {
  if (cfg.devicesToBind.length > 0) {
    const known = cfg.devicesToBind.flatMap((d) => { const mtu = interfaceMtu(d, read); return mtu === undefined ? [] : [{ name: d, mtu }]; });
    if (known.length === 0) return { reason: `none of DevicesToBind (${cfg.devicesToBind.join(', ')}) exists` };
    const min = known.reduce((a, b) => (b.mtu < a.mtu ? b : a));
    return { ...min, via: 'DevicesToBind' };
  }
  const ta = cfg.remoteTAs.find((t) => (t.kind === 'udp' || t.kind === 'tcp') && (isIPv4(t.host) || isIPv6(t.host)));
  const target = ta?.host ?? '0.0.0.0';
  const dev = isIPv4(target) ? routeDevice4(target, read) : routeDevice6(target, read);
  const what = ta ? `the route to ${target}` : 'the default route';
  if (dev === undefined) return { reason: `no interface found for ${what}` };
  const mtu = interfaceMtu(dev, read);
  if (mtu === undefined) return { reason: `cannot read the MTU of ${dev} (${what})` };
  return { name: dev, mtu, via: what };
}

const ipv4Number = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0) >>> 0;
/** /proc/net/route writes addresses as the hex of the in-memory (network order) word, read little-endian. */
const procHex4 = (h: string) => { const v = parseInt(h, 16); return (((v & 0xff) << 24) | ((v >>> 8 & 0xff) << 16) | ((v >>> 16 & 0xff) << 8) | (v >>> 24 & 0xff)) >>> 0; };
const bitCount = (m: number) => { let n = 0; for (let v = m >>> 0; v; v >>>= 1) n += v & 1; return n; };
const RTF_UP = 0x1, RTF_REJECT = 0x200;

/** The device of the longest-prefix (then lowest-metric) IPv4 route in the main table. */
export function routeDevice4(ip: string, read: ReadSys = readSys): string | undefined {
  const target = ipv4Number(ip);
  if (target >>> 24 === 127) return 'lo'; // in the local table, which /proc/net/route does not show
  let best: { dev: string; len: number; metric: number } | undefined;
  for (const line of (read('/proc/net/route') ?? '').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || !/^[0-9A-Fa-f]{8}$/.test(f[1]!) || !/^[0-9A-Fa-f]{8}$/.test(f[7]!)) continue;
    if ((parseInt(f[3]!, 16) & RTF_UP) === 0) continue;
    const dest = procHex4(f[1]!), mask = procHex4(f[7]!), metric = Number(f[6]);
    if (((target & mask) >>> 0) !== dest) continue;
    const len = bitCount(mask);
    if (!best || len > best.len || (len === best.len && metric < best.metric)) best = { dev: f[0]!, len, metric };
  }
  return best?.dev;
}

/** Expands an IPv6 address to 32 hex digits. */
function ipv6Hex(ip: string): string {
  const [head, tail] = ip.includes('::') ? ip.split('::') as [string, string] : [ip, undefined];
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const h = groups(head), t = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return all.map((g) => g.padStart(4, '0')).join('').toLowerCase();
}

/** The device of the longest-prefix (then lowest-metric) IPv6 route (/proc/net/ipv6_route). */
export function routeDevice6(ip: string, read: ReadSys = readSys): string | undefined {
  if (ip.includes('.')) return undefined; // an IPv4-mapped address: not routed by the IPv6 table here
  const target = ipv6Hex(ip);
  const bits = (hex: string, n: number) => [...hex].map((c) => parseInt(c, 16).toString(2).padStart(4, '0')).join('').slice(0, n);
  let best: { dev: string; len: number; metric: number } | undefined;
  for (const line of (read('/proc/net/ipv6_route') ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !/^[0-9a-f]{32}$/.test(f[0]!)) continue;
    const flags = parseInt(f[8]!, 16);
    if ((flags & RTF_UP) === 0 || (flags & RTF_REJECT) !== 0) continue;
    const len = parseInt(f[1]!, 16), metric = parseInt(f[5]!, 16);
    if (bits(f[0]!, len) !== bits(target, len)) continue;
    if (!best || len > best.len || (len === best.len && metric < best.metric)) best = { dev: f[9]!, len, metric };
  }
  return best?.dev;
}
