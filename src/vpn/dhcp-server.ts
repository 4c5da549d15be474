// The VPN's DHCP server on the TAP: answers the local host's DISCOVER and REQUEST with an
// address obtained through `lease` (a DHT Create in IPOP). Leasing can take seconds, so
// transactions for one MAC are serialised and retransmissions of one in flight are absorbed.
import { silentLogger, type Logger } from '../util/log.js';
import { WireError } from '../wire/value.js';
import type { DhcpRange } from './dhcp-config.js';
import {
  BOOTREQUEST, DHCP_TYPE_NAMES, DhcpType, FLAG_BROADCAST, decodeDhcp, encodeDhcpReply, type DhcpMessage,
} from './dhcp-wire.js';
import { BROADCAST_MAC, LIMITED_BROADCAST, buildUdpFrame, decodeUdp, ipToString, macToString } from './frames.js';

export { isDhcpRequest } from './frames.js';

export interface DhcpServerOptions {
  range: DhcpRange;
  /** Source MAC of every reply (IPOP's fake gateway MAC). */
  serverMac: Uint8Array;
  mtu: number;
  /** Resolves to the leased address; `requested` is only passed when it is assignable. */
  lease: (mac: Uint8Array, requested: number | undefined, hostname?: string) => Promise<number>;
  /** Seconds. */
  leaseTime: number;
  log?: Logger;
  /** Server UDP port (IpopConfig DHCPPort); the client port is this + 1. Default 67. */
  serverPort?: number;
  /** Domain name option (15). Default "ipop". */
  domainName?: string;
  /** DNS servers option (6); omitted unless given (IPOP passes [serverIp] when it serves DNS). */
  dns?: readonly number[];
  /** Router option (3); omitted unless given, since a default route into the VPN breaks Linux hosts. */
  router?: number;
  /** Most MACs with a transaction in flight; more are dropped. Default 256. */
  maxClients?: number;
}

// In flight plus one waiting: enough for a client that moves on to its next message.
const MAX_QUEUED_PER_MAC = 2;

interface MacQueue {
  tail: Promise<unknown>;
  /** Transactions queued or running, by type:xid:requested, to spot retransmissions. */
  pending: Map<string, Promise<unknown>>;
}

export class DhcpServer {
  private readonly range: DhcpRange;
  private readonly serverMac: Uint8Array;
  private readonly log: Logger;
  private readonly port: number;
  private readonly queues = new Map<string, MacQueue>();

  constructor(private readonly o: DhcpServerOptions) {
    if (o.serverMac.length !== 6) throw new RangeError('serverMac must be 6 bytes');
    if (!Number.isInteger(o.mtu) || o.mtu < 68 || o.mtu > 0xffff) throw new RangeError(`MTU ${o.mtu} out of range 68..65535`);
    if (!Number.isInteger(o.leaseTime) || o.leaseTime <= 0 || o.leaseTime > 0xffffffff) throw new RangeError(`lease time ${o.leaseTime} must be a positive number of seconds`);
    this.port = o.serverPort ?? 67;
    if (!Number.isInteger(this.port) || this.port < 1 || this.port > 0xfffe) throw new RangeError(`DHCP port ${this.port} out of range 1..65534`);
    this.range = o.range;
    this.serverMac = o.serverMac.slice();
    this.log = o.log ?? silentLogger;
  }

  get serverIp(): number { return this.range.serverIp; }

  /** Handles one frame from the TAP; resolves to the reply frame, or null (malformed, ignored, or no address). */
  async handle(frame: Uint8Array): Promise<Uint8Array | null> {
    let msg: DhcpMessage;
    try {
      const udp = decodeUdp(frame);
      if (udp.srcPort !== this.port + 1 || udp.dstPort !== this.port) return null;
      msg = decodeDhcp(udp.payload);
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      this.log.debug(`dhcp: dropping malformed frame: ${e.message}`);
      return null;
    }
    if (msg.op !== BOOTREQUEST) return null;
    if (msg.htype !== 1 || msg.hlen !== 6) {
      this.log.debug(`dhcp: ignoring non-Ethernet client (htype ${msg.htype}, hlen ${msg.hlen})`);
      return null;
    }
    const mac = macToString(msg.chaddr);
    const type = msg.messageType;
    if (type !== DhcpType.Discover && type !== DhcpType.Request) {
      // RELEASE/DECLINE need no answer: the DHT lease simply runs out. INFORM is not offered.
      const name = type === undefined ? 'BOOTP (no message type)' : DHCP_TYPE_NAMES[type] ?? `type ${type}`;
      this.log.info(`dhcp: ignoring ${name} from ${mac}`);
      return null;
    }
    return this.enqueue(mac, msg, type);
  }

  private async enqueue(mac: string, msg: DhcpMessage, type: number): Promise<Uint8Array | null> {
    let q = this.queues.get(mac);
    if (q === undefined) {
      if (this.queues.size >= (this.o.maxClients ?? 256)) {
        this.log.warn(`dhcp: ${this.queues.size} clients in flight, dropping request from ${mac}`);
        return null;
      }
      q = { tail: Promise.resolve(), pending: new Map() };
      this.queues.set(mac, q);
    }
    const sig = `${type}:${msg.xid}:${msg.requestedIp ?? msg.ciaddr}`;
    const dup = q.pending.get(sig);
    if (dup !== undefined) {
      // A retransmission: the original's reply answers it too.
      await dup;
      return null;
    }
    if (q.pending.size >= MAX_QUEUED_PER_MAC) {
      this.log.debug(`dhcp: ${mac} already has ${q.pending.size} transactions queued, dropping`);
      return null;
    }
    const run = q.tail.then(() => this.process(msg, type));
    q.pending.set(sig, run);
    q.tail = run;
    try {
      return await run;
    } finally {
      q.pending.delete(sig);
      if (q.pending.size === 0 && this.queues.get(mac) === q) this.queues.delete(mac);
    }
  }

  private async process(msg: DhcpMessage, type: number): Promise<Uint8Array | null> {
    try {
      return type === DhcpType.Discover ? await this.discover(msg) : await this.request(msg);
    } catch (e) {
      this.log.error(`dhcp: failed to answer ${DHCP_TYPE_NAMES[type]} from ${macToString(msg.chaddr)}: ${(e as Error).stack ?? e}`);
      return null;
    }
  }

  private async discover(msg: DhcpMessage): Promise<Uint8Array | null> {
    const mac = macToString(msg.chaddr);
    const want = msg.requestedIp !== undefined && this.range.isAssignable(msg.requestedIp) ? msg.requestedIp : undefined;
    let ip: number;
    try {
      ip = await this.o.lease(msg.chaddr, want, msg.hostname);
    } catch (e) {
      this.log.warn(`dhcp: no address for ${mac}: ${(e as Error).message ?? e}`);
      return null;
    }
    if (!this.range.isAssignable(ip)) {
      this.log.error(`dhcp: lease for ${mac} gave ${ipToString(ip)}, which is not assignable in ${this.range}`);
      return null;
    }
    this.log.debug(`dhcp: OFFER ${ipToString(ip)} to ${mac}`);
    return this.reply(msg, DhcpType.Offer, ip);
  }

  private async request(msg: DhcpMessage): Promise<Uint8Array | null> {
    const mac = macToString(msg.chaddr);
    if (msg.serverId !== undefined && msg.serverId !== this.serverIp) {
      this.log.debug(`dhcp: ${mac} chose server ${ipToString(msg.serverId)}, not us`);
      return null;
    }
    const want = msg.requestedIp ?? (msg.ciaddr !== 0 ? msg.ciaddr : undefined);
    if (want === undefined) return this.nak(msg, 'no requested address');
    if (!this.range.isAssignable(want)) return this.nak(msg, `${ipToString(want)} is not assignable in ${this.range}`);
    let ip: number;
    try {
      ip = await this.o.lease(msg.chaddr, want, msg.hostname);
    } catch (e) {
      return this.nak(msg, `${ipToString(want)} is unavailable: ${(e as Error).message ?? e}`);
    }
    if (ip !== want) return this.nak(msg, `${ipToString(want)} is unavailable (lease gave ${ipToString(ip)})`);
    this.log.info(`dhcp: ACK ${ipToString(ip)} to ${mac}${msg.hostname === undefined ? '' : ` (${msg.hostname})`}`);
    return this.reply(msg, DhcpType.Ack, ip);
  }

  private nak(msg: DhcpMessage, why: string): Uint8Array {
    this.log.info(`dhcp: NAK to ${macToString(msg.chaddr)}: ${why}`);
    return this.reply(msg, DhcpType.Nak, 0, why);
  }

  private reply(msg: DhcpMessage, type: typeof DhcpType.Offer | typeof DhcpType.Ack | typeof DhcpType.Nak, yiaddr: number, message?: string): Uint8Array {
    const payload = encodeDhcpReply({
      request: msg, type, serverId: this.serverIp, yiaddr,
      leaseTime: this.o.leaseTime, subnetMask: this.range.netmask, mtu: this.o.mtu,
      domainName: this.o.domainName ?? 'ipop',
      ...(this.o.dns !== undefined ? { dns: this.o.dns } : {}),
      ...(this.o.router !== undefined ? { router: this.o.router } : {}),
      ...(message !== undefined ? { message } : {}),
    });
    // RFC 2131 §4.1: NAKs and replies to unconfigured clients (or ones asking for it) are broadcast.
    const broadcast = type === DhcpType.Nak || msg.ciaddr === 0 || (msg.flags & FLAG_BROADCAST) !== 0;
    return buildUdpFrame({
      srcMac: this.serverMac, dstMac: broadcast ? BROADCAST_MAC : msg.chaddr,
      srcIp: this.serverIp, dstIp: broadcast ? LIMITED_BROADCAST : msg.ciaddr,
      srcPort: this.port, dstPort: this.port + 1, payload,
    });
  }
}
