// DHCP messages (RFC 2131 layout, RFC 2132 options). The decoder is strict about structure
// (cookie, lengths, options running past their field) but tolerant of what real clients
// send: a missing END, a NUL-terminated hostname, options split across instances (RFC 3396)
// or moved into sname/file by option overload.
import { WireError } from '../wire/value.js';
import { readU16, readU32, writeU16, writeU32 } from './frames.js';

export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const DHCP_MAGIC = 0x63825363;
export const DHCP_FIXED = 236; // op .. file, before the magic cookie
export const DHCP_MIN_REPLY = 300; // BOOTP minimum; some old clients drop shorter replies
export const FLAG_BROADCAST = 0x8000;

export const DhcpType = {
  Discover: 1, Offer: 2, Request: 3, Decline: 4, Ack: 5, Nak: 6, Release: 7, Inform: 8,
} as const;
export type DhcpType = (typeof DhcpType)[keyof typeof DhcpType];
export const DHCP_TYPE_NAMES: Record<number, string> = {
  1: 'DISCOVER', 2: 'OFFER', 3: 'REQUEST', 4: 'DECLINE', 5: 'ACK', 6: 'NAK', 7: 'RELEASE', 8: 'INFORM',
};

export const Opt = {
  Pad: 0, SubnetMask: 1, Router: 3, Dns: 6, Hostname: 12, DomainName: 15, Mtu: 26,
  RequestedIp: 50, LeaseTime: 51, Overload: 52, MessageType: 53, ServerId: 54, ParamList: 55,
  Message: 56, MaxSize: 57, RenewalT1: 58, RebindingT2: 59, ClientId: 61, End: 255,
} as const;

export interface DhcpMessage {
  op: number;
  htype: number;
  hlen: number;
  hops: number;
  xid: number;
  secs: number;
  flags: number;
  ciaddr: number;
  yiaddr: number;
  siaddr: number;
  giaddr: number;
  /** The first hlen bytes of the chaddr field (a copy). */
  chaddr: Uint8Array;
  /** Every option by code, repeated instances concatenated (copies). */
  options: Map<number, Uint8Array>;
  messageType?: number;
  requestedIp?: number;
  serverId?: number;
  paramList?: Uint8Array;
  hostname?: string;
  clientId?: Uint8Array;
}

const utf8d = new TextDecoder('utf-8', { fatal: true });
const utf8 = new TextEncoder();

/** Appends the options in b[start, end) to `out`, stopping at END. */
function readOptions(b: Uint8Array, start: number, end: number, field: string, out: Map<number, Uint8Array[]>): void {
  let i = start;
  while (i < end) {
    const code = b[i++]!;
    if (code === Opt.Pad) continue;
    if (code === Opt.End) return;
    if (i >= end) throw new WireError(`${field}: option ${code} has no length byte`);
    const len = b[i++]!;
    if (i + len > end) throw new WireError(`${field}: option ${code} of length ${len} runs past the end`);
    let list = out.get(code);
    if (list === undefined) out.set(code, (list = []));
    list.push(b.subarray(i, i + len));
    i += len;
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!.slice();
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function fixed(opts: Map<number, Uint8Array>, code: number, len: number, name: string): Uint8Array | undefined {
  const v = opts.get(code);
  if (v !== undefined && v.length !== len) throw new WireError(`option ${code} (${name}) has length ${v.length}, expected ${len}`);
  return v;
}

export function decodeDhcp(b: Uint8Array): DhcpMessage {
  if (b.length < DHCP_FIXED + 4) throw new WireError(`DHCP message of ${b.length} bytes is shorter than the ${DHCP_FIXED + 4}-byte minimum`);
  const op = b[0]!;
  if (op !== BOOTREQUEST && op !== BOOTREPLY) throw new WireError(`BOOTP op ${op} is neither request (1) nor reply (2)`);
  const hlen = b[2]!;
  if (hlen > 16) throw new WireError(`hardware address length ${hlen} > 16`);
  if (readU32(b, DHCP_FIXED) !== DHCP_MAGIC) throw new WireError('bad DHCP magic cookie');

  const raw = new Map<number, Uint8Array[]>();
  readOptions(b, DHCP_FIXED + 4, b.length, 'options', raw);
  // RFC 2132 §9.3: overload moves further options into file (1), sname (2) or both (3), read in that order.
  const ov = raw.get(Opt.Overload);
  if (ov !== undefined) {
    if (ov.length !== 1 || ov[0]!.length !== 1) throw new WireError('option 52 (overload) must appear once with length 1');
    const v = ov[0]![0]!;
    if (v < 1 || v > 3) throw new WireError(`option 52 (overload) value ${v} not in 1..3`);
    if (v & 1) readOptions(b, 108, 236, 'file', raw);
    if (v & 2) readOptions(b, 44, 108, 'sname', raw);
  }
  const options = new Map<number, Uint8Array>();
  for (const [k, parts] of raw) options.set(k, concat(parts));

  const m: DhcpMessage = {
    op, htype: b[1]!, hlen, hops: b[3]!,
    xid: readU32(b, 4), secs: readU16(b, 8), flags: readU16(b, 10),
    ciaddr: readU32(b, 12), yiaddr: readU32(b, 16), siaddr: readU32(b, 20), giaddr: readU32(b, 24),
    chaddr: b.slice(28, 28 + hlen),
    options,
  };
  const t = fixed(options, Opt.MessageType, 1, 'message type');
  if (t !== undefined) m.messageType = t[0]!;
  const rq = fixed(options, Opt.RequestedIp, 4, 'requested IP');
  if (rq !== undefined) m.requestedIp = readU32(rq, 0);
  const sid = fixed(options, Opt.ServerId, 4, 'server identifier');
  if (sid !== undefined) m.serverId = readU32(sid, 0);
  const pl = options.get(Opt.ParamList);
  if (pl !== undefined) m.paramList = pl;
  const cid = options.get(Opt.ClientId);
  if (cid !== undefined) {
    if (cid.length < 2) throw new WireError(`option 61 (client identifier) has length ${cid.length}, expected at least 2`);
    m.clientId = cid;
  }
  const hn = options.get(Opt.Hostname);
  if (hn !== undefined) {
    let end = hn.length;
    while (end > 0 && hn[end - 1] === 0) end--; // some clients NUL-terminate
    try {
      const s = utf8d.decode(hn.subarray(0, end));
      if (s !== '') m.hostname = s;
    } catch {
      // An undecodable hostname is the client's problem, not a reason to refuse an address.
    }
  }
  return m;
}

export interface DhcpEncodeSpec {
  op: number;
  xid: number;
  chaddr: Uint8Array;
  htype?: number; // default 1 (Ethernet)
  hops?: number;
  secs?: number;
  flags?: number;
  ciaddr?: number;
  yiaddr?: number;
  siaddr?: number;
  giaddr?: number;
  /** Written in this order, after which END; values over 255 bytes are split (RFC 3396). */
  options: Array<[code: number, value: Uint8Array]>;
  /** Pad the message with zeros to at least this many bytes. */
  minLength?: number;
}

export function encodeDhcp(s: DhcpEncodeSpec): Uint8Array {
  if (s.chaddr.length > 16) throw new RangeError(`chaddr of ${s.chaddr.length} bytes > 16`);
  let optLen = 1;
  for (const [code, v] of s.options) {
    if (code === Opt.Pad || code === Opt.End || code < 0 || code > 255) throw new RangeError(`cannot encode option code ${code}`);
    optLen += v.length === 0 ? 2 : v.length + 2 * Math.ceil(v.length / 255);
  }
  const b = new Uint8Array(Math.max(DHCP_FIXED + 4 + optLen, s.minLength ?? 0));
  b[0] = s.op; b[1] = s.htype ?? 1; b[2] = s.chaddr.length; b[3] = s.hops ?? 0;
  writeU32(b, 4, s.xid >>> 0);
  writeU16(b, 8, s.secs ?? 0);
  writeU16(b, 10, s.flags ?? 0);
  writeU32(b, 12, (s.ciaddr ?? 0) >>> 0);
  writeU32(b, 16, (s.yiaddr ?? 0) >>> 0);
  writeU32(b, 20, (s.siaddr ?? 0) >>> 0);
  writeU32(b, 24, (s.giaddr ?? 0) >>> 0);
  b.set(s.chaddr, 28);
  writeU32(b, DHCP_FIXED, DHCP_MAGIC);
  let o = DHCP_FIXED + 4;
  for (const [code, v] of s.options) {
    let p = 0;
    do {
      const n = Math.min(255, v.length - p);
      b[o++] = code; b[o++] = n;
      b.set(v.subarray(p, p + n), o);
      o += n; p += n;
    } while (p < v.length);
  }
  b[o] = Opt.End;
  return b;
}

// Option value builders.
export const optU8 = (v: number): Uint8Array => Uint8Array.of(v & 0xff);
export const optU16 = (v: number): Uint8Array => { const b = new Uint8Array(2); writeU16(b, 0, v); return b; };
export const optU32 = (v: number): Uint8Array => { const b = new Uint8Array(4); writeU32(b, 0, v >>> 0); return b; };
export const optIps = (ips: readonly number[]): Uint8Array => {
  const b = new Uint8Array(4 * ips.length);
  ips.forEach((ip, i) => writeU32(b, 4 * i, ip >>> 0));
  return b;
};
export const optText = (s: string): Uint8Array => utf8.encode(s);

export interface DhcpReplySpec {
  /** The client's message: supplies xid, flags, giaddr, htype and chaddr. */
  request: DhcpMessage;
  type: typeof DhcpType.Offer | typeof DhcpType.Ack | typeof DhcpType.Nak;
  serverId: number;
  yiaddr?: number; // ignored for NAK
  leaseTime?: number;
  /** Defaults lease/2 and lease*7/8 when a lease time is given. */
  renewalT1?: number;
  rebindingT2?: number;
  subnetMask?: number;
  mtu?: number;
  /** Omitted unless given: a default route into the VPN breaks Linux hosts. */
  router?: number;
  dns?: readonly number[];
  domainName?: string;
  /** Option 56, e.g. why a NAK was sent. */
  message?: string;
}

/** A BOOTREPLY; for NAK only server id and message are sent (RFC 2131 table 3). */
export function encodeDhcpReply(r: DhcpReplySpec): Uint8Array {
  const opts: Array<[number, Uint8Array]> = [[Opt.MessageType, optU8(r.type)], [Opt.ServerId, optU32(r.serverId)]];
  const nak = r.type === DhcpType.Nak;
  if (!nak) {
    if (r.leaseTime !== undefined) {
      opts.push([Opt.LeaseTime, optU32(r.leaseTime)]);
      opts.push([Opt.RenewalT1, optU32(r.renewalT1 ?? Math.floor(r.leaseTime / 2))]);
      opts.push([Opt.RebindingT2, optU32(r.rebindingT2 ?? Math.floor((r.leaseTime * 7) / 8))]);
    }
    if (r.subnetMask !== undefined) opts.push([Opt.SubnetMask, optU32(r.subnetMask)]);
    if (r.mtu !== undefined) opts.push([Opt.Mtu, optU16(r.mtu)]);
    if (r.router !== undefined) opts.push([Opt.Router, optU32(r.router)]);
    if (r.dns !== undefined && r.dns.length > 0) opts.push([Opt.Dns, optIps(r.dns)]);
    if (r.domainName !== undefined) opts.push([Opt.DomainName, optText(r.domainName)]);
  }
  if (r.message !== undefined) opts.push([Opt.Message, optText(r.message)]);
  const q = r.request;
  return encodeDhcp({
    op: BOOTREPLY, htype: q.htype, xid: q.xid, flags: q.flags, giaddr: q.giaddr, chaddr: q.chaddr,
    ciaddr: r.type === DhcpType.Ack ? q.ciaddr : 0, yiaddr: nak ? 0 : (r.yiaddr ?? 0),
    options: opts, minLength: DHCP_MIN_REPLY,
  });
}
