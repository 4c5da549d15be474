// SocialVPN's DNS responder on the TAP address: authoritative for `svpn` (`<device>.<user>.svpn`
// and `<user>.svpn`, A records) and for the reverse names `d.c.b.a.in-addr.arpa` (PTR), REFUSED
// for everything else so a stub resolver moves on to its next server. Which name maps to which
// address is the caller's (SvpnNames); this file only speaks DNS, with dns-packet as the codec.
// answerDnsQuery is pure and never throws; DnsServer puts it on a UDP socket.
//
// Negative answers carry no SOA, so resolvers do not cache them: a friend's device that comes
// online resolves at once. A question name that dns-packet cannot read back byte for byte (a '.'
// or invalid UTF-8 inside a label, a compression pointer) can never be one of ours: FORMERR.
import dgram from 'node:dgram';
import dnsPacket, { type Answer, type DecodedPacket, type OptAnswer } from 'dns-packet';
import { silentLogger, type Logger } from '../../util/log.js';
import { ipToString, parseIp } from '../frames.js';

/** Name resolution for the svpn domain; names are lower case, without a trailing dot. */
export interface SvpnNames {
  /** The u32 IPv4 address of `<device>.<user>.svpn` or `<user>.svpn`; undefined if unknown. */
  lookupA(name: string): number | undefined;
  /** The svpn name of a local address (u32 IPv4); undefined if none. */
  lookupPtr(ip: number): string | undefined;
  /** Whether reverse names of `ip` are ours (the device's subnet); without it, all of in-addr.arpa is. */
  servesPtr?(ip: number): boolean;
}

export const SVPN_DOMAIN = 'svpn';
/** Seconds: friends' devices come and go. */
export const ANSWER_TTL = 60;

export const Rcode = { NoError: 0, FormErr: 1, ServFail: 2, NxDomain: 3, NotImp: 4, Refused: 5 } as const;

const HEADER = 12;
const QR = 0x8000;
const RD = dnsPacket.RECURSION_DESIRED;
const CD = dnsPacket.CHECKING_DISABLED;
const AA = dnsPacket.AUTHORITATIVE_ANSWER;
const TC = dnsPacket.TRUNCATED_RESPONSE;
const TYPE_A = 1, TYPE_PTR = 12, TYPE_ANY = 255;
const CLASS_IN = 1, CLASS_ANY = 255;
/** Our EDNS UDP payload size (the DNS flag day 2020 value). */
const EDNS_SIZE = 1232;
const PTR_SUFFIX = '.in-addr.arpa';

interface Verdict { rcode: number; answers: Answer[] }

/**
 * The response to one DNS query datagram, or undefined when there is nothing to answer: fewer
 * than 12 bytes (no header to reply to) or a response rather than a query.
 */
export function answerDnsQuery(query: Uint8Array, names: SvpnNames): Uint8Array | undefined {
  try {
    return answer(Buffer.from(query.buffer, query.byteOffset, query.byteLength), names);
  } catch {
    // Only a bug in the codec or here gets this far; the client still hears why.
    return query.byteLength >= HEADER ? bare(query, Rcode.ServFail) : undefined;
  }
}

function answer(buf: Buffer, names: SvpnNames): Uint8Array | undefined {
  if (buf.length < HEADER) return undefined;
  const flags = buf.readUInt16BE(2);
  if (flags & QR) return undefined; // never answer an answer (no loops between responders)
  const opcode = (flags >> 11) & 0xf;
  if (opcode !== 0) return bare(buf, Rcode.NotImp);

  let msg: DecodedPacket;
  try {
    msg = dnsPacket.decode(buf);
  } catch {
    return bare(buf, Rcode.FormErr);
  }
  if (msg.questions?.length !== 1) return bare(buf, Rcode.FormErr);
  const q = msg.questions[0]!;
  const qEnd = dnsPacket.encodingLength({ questions: [q] }); // header + this question
  if (qEnd > buf.length || !sameName(buf, q.name, qEnd - 4)) return bare(buf, Rcode.FormErr);

  const opts = (msg.additionals ?? []).filter((a): a is OptAnswer => a.type === 'OPT');
  if (opts.length > 1) return bare(buf, Rcode.FormErr);
  const edns = opts[0];
  const limit = edns === undefined ? 512 : Math.min(Math.max(edns.udpPayloadSize, 512), EDNS_SIZE);
  const qtype = buf.readUInt16BE(qEnd - 4);
  const qclass = buf.readUInt16BE(qEnd - 2);
  const verdict: Verdict = edns !== undefined && edns.ednsVersion !== 0
    ? { rcode: Rcode.NoError, answers: [] } // BADVERS, below
    : zoneAnswer(q.name, qtype, qclass, names);

  const respond = (answers: Answer[], truncated: boolean): Buffer => {
    const out = dnsPacket.encode({
      type: 'response',
      id: msg.id,
      flags: (flags & (RD | CD)) | (verdict.rcode === Rcode.Refused ? 0 : AA) | (truncated ? TC : 0) | verdict.rcode,
      questions: [{ name: q.name, type: 'A', class: 'IN' }],
      answers,
      additionals: edns === undefined ? [] : [optRecord(edns.ednsVersion !== 0 ? 1 : 0)],
    });
    // The question exactly as asked: its name is the same bytes, type and class may be ones dns-packet does not know.
    out.set(buf.subarray(HEADER, qEnd), HEADER);
    return out;
  };
  const full = respond(verdict.answers, false);
  return full.length <= limit ? full : respond([], true);
}

/** What the svpn and reverse zones say about one question. */
function zoneAnswer(qname: string, qtype: number, qclass: number, names: SvpnNames): Verdict {
  const name = lowerAscii(qname).replace(/\.$/, '');
  const inSvpn = name === SVPN_DOMAIN || name.endsWith('.' + SVPN_DOMAIN);
  const inArpa = name === PTR_SUFFIX.slice(1) || name.endsWith(PTR_SUFFIX);
  if ((!inSvpn && !inArpa) || (qclass !== CLASS_IN && qclass !== CLASS_ANY)) return { rcode: Rcode.Refused, answers: [] };
  const none = (rcode: number): Verdict => ({ rcode, answers: [] });

  if (inSvpn) {
    if (name === SVPN_DOMAIN) return none(Rcode.NoError); // the zone apex exists, with no A
    const ip = names.lookupA(name);
    if (ip === undefined) return none(Rcode.NxDomain);
    if (!Number.isInteger(ip) || ip < 0 || ip > 0xffffffff) return none(Rcode.ServFail);
    if (qtype !== TYPE_A && qtype !== TYPE_ANY) return none(Rcode.NoError);
    return { rcode: Rcode.NoError, answers: [{ name: qname, type: 'A', class: 'IN', ttl: ANSWER_TTL, data: ipToString(ip) }] };
  }

  const labels = name === PTR_SUFFIX.slice(1) ? [] : name.slice(0, -PTR_SUFFIX.length).split('.');
  const octets = labels.every((l) => /^(0|[1-9]\d{0,2})$/.test(l) && Number(l) <= 255);
  if (!octets || labels.length > 4) return none(Rcode.NxDomain);
  if (labels.length < 4) return none(Rcode.NoError); // an ancestor of addresses' names
  const ip = parseIp(labels.reverse().join('.'));
  if (names.servesPtr !== undefined && !names.servesPtr(ip)) return none(Rcode.Refused);
  const target = names.lookupPtr(ip);
  if (target === undefined) return none(Rcode.NxDomain);
  if (!isHostName(target)) return none(Rcode.ServFail);
  if (qtype !== TYPE_PTR && qtype !== TYPE_ANY) return none(Rcode.NoError);
  return { rcode: Rcode.NoError, answers: [{ name: qname, type: 'PTR', class: 'IN', ttl: ANSWER_TTL, data: target }] };
}

/** Whether dns-packet encodes `name` back to the question's bytes [HEADER, end). */
function sameName(buf: Buffer, name: string, end: number): boolean {
  const enc = dnsPacket.encode({ questions: [{ name, type: 'A' }] });
  return enc.length - 4 === end && enc.subarray(HEADER, end).equals(buf.subarray(HEADER, end));
}

/** A name dns-packet encodes faithfully: labels of 1..63 bytes without '.', at most 253 characters. */
function isHostName(s: string): boolean {
  const n = s.replace(/\.$/, '');
  return n.length > 0 && Buffer.byteLength(n) <= 253 && n.split('.').every((l) => l.length > 0 && Buffer.byteLength(l) <= 63);
}

/** DNS compares names case-insensitively in ASCII only. */
function lowerAscii(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

function optRecord(extendedRcode: number): OptAnswer {
  return { name: '.', type: 'OPT', udpPayloadSize: EDNS_SIZE, extendedRcode, ednsVersion: 0, flags: 0, flag_do: false, options: [] };
}

/** A header-only response: ID, opcode, RD and CD copied, no sections. */
function bare(query: Uint8Array, rcode: number): Uint8Array {
  const out = new Uint8Array(HEADER);
  const flags = (query[2]! << 8) | query[3]!;
  out[0] = query[0]!; out[1] = query[1]!;
  const f = QR | (flags & (0x7800 | RD | CD)) | rcode;
  out[2] = f >> 8; out[3] = f & 0xff;
  return out;
}

export interface DnsCounters {
  /** Datagrams received. */
  queries: number;
  /** NOERROR responses, with answers or without (NODATA). */
  answered: number;
  refused: number;
  nxdomain: number;
  /** FORMERR responses, and datagrams not answered (shorter than a header, or responses). */
  malformed: number;
}

/** answerDnsQuery on a UDP socket (the TAP address, port 53). */
export class DnsServer {
  readonly counters: DnsCounters = { queries: 0, answered: 0, refused: 0, nxdomain: 0, malformed: 0 };
  private socket?: dgram.Socket;

  /** Binds `bindIp:port` (port 0: any free one); rejects with a one-line error when it cannot. */
  async start(bindIp: string, port = 53, names: SvpnNames, log: Logger = silentLogger): Promise<void> {
    if (this.socket !== undefined) throw new Error('DNS server already started');
    if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new RangeError(`DNS port ${port} out of range 0..65535`);
    const s = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      s.once('error', (e: NodeJS.ErrnoException) => {
        try { s.close(); } catch { /* never bound */ }
        reject(new Error(`cannot bind ${bindIp}:${port}: ${e.code ?? e.message}`));
      });
      s.bind(port, bindIp, () => resolve());
    });
    s.removeAllListeners('error');
    s.on('error', (e) => log.warn(`dns: socket error: ${e.message}`));
    s.on('message', (msg, rinfo) => {
      try {
        this.counters.queries++;
        const reply = answerDnsQuery(msg, names);
        this.count(reply);
        if (reply === undefined) return;
        log.debug(`dns: ${rinfo.address}:${rinfo.port} rcode ${reply[3]! & 0xf}`);
        s.send(reply, rinfo.port, rinfo.address, (e) => { if (e) log.debug(`dns: reply to ${rinfo.address}:${rinfo.port} failed: ${e.message}`); });
      } catch (e) {
        log.error(`dns: ${(e as Error).message}`);
      }
    });
    this.socket = s;
  }

  /** The bound port (0 before start). */
  get port(): number { return this.socket?.address().port ?? 0; }

  async stop(): Promise<void> {
    const s = this.socket;
    this.socket = undefined;
    if (s === undefined) return;
    await new Promise<void>((resolve) => { try { s.close(() => resolve()); } catch { resolve(); } });
  }

  private count(reply: Uint8Array | undefined): void {
    const rcode = reply === undefined ? Rcode.FormErr : reply[3]! & 0xf;
    if (rcode === Rcode.NoError) this.counters.answered++;
    else if (rcode === Rcode.Refused) this.counters.refused++;
    else if (rcode === Rcode.NxDomain) this.counters.nxdomain++;
    else if (rcode === Rcode.FormErr) this.counters.malformed++;
  }
}
