// UDP transport: one dgram socket per listener, every edge multiplexed on it.
//
// Datagram format (big-endian):
//   byte 0      wire version (1)
//   byte 1      type: 0 = data, 1 = close, 2 = reset, 3 = fragment, 4 = fragment request
//   bytes 2..5  sender's edge id   (u32, random, non-zero)
//   bytes 6..9  receiver's edge id (u32, 0 while the sender does not know it yet)
//   bytes 10..  payload (data), a fragment of one, or a request for lost fragments (see udp-fragments.ts)
//
// Demultiplexing: a datagram with receiver id != 0 must name one of our local edge
// ids and come from that edge's remote endpoint; one with receiver id 0 is matched by
// (remote ip, remote port, sender id), and if unknown and of type data it opens a new
// inbound edge. Unknown edges with receiver id != 0 get a (rate-limited) reset, so a
// peer that restarted tells us quickly that our edge is dead. Close/reset are never
// answered, which rules out reply loops.
import type { TimerHandle } from '../util/clock.js';
import { RESETS_PER_SECOND, type Edge, type EdgeListener } from './edge.js';
import { AdvertisedTAs, newIpStats, normalizeIp, resolveTa, safeCall, type IpListenerOptions, type IpTransportStats } from './ip.js';
import {
  decodeRequest, FragmentBudget, fragmentCount, FRAGMENT_HEADER, FRAGMENT_PAYLOAD, KEEP_MS, MAX_DATAGRAM, MAX_MESSAGE, Reassembly, Retained,
  writeFragmentFields,
} from './udp-fragments.js';
import { TransportAddress, type TaKind } from './ta.js';
import { fastPathFromEnv, openSocket, type DatagramSocket } from './udp-socket.js';
import type { BatchSocket } from './udp-batch.js';
import { transientBytes } from '../util/gc-pacer.js';

export const UDP_WIRE_VERSION = 1;
export const UDP_HEADER = 10;
/** Larger messages go out as fragments of at most MAX_DATAGRAM bytes. */
export const UDP_MAX_PAYLOAD = MAX_MESSAGE;
export const T_DATA = 0, T_CLOSE = 1, T_RESET = 2, T_FRAGMENT = 3, T_REQUEST = 4;
/** How often incomplete messages are checked for fragments to ask for again. */
const REPAIR_TICK_MS = 5;

export interface UdpListenerOptions extends IpListenerOptions {
  /**
   * Batched I/O through the addon (recvmmsg/sendmmsg, GRO/GSO where the kernel has them);
   * node:dgram when false or when the addon is missing. Default: BRUNET_FASTPATH=1 in the
   * environment, else false.
   */
  fastPath?: boolean;
}

/** The IP listener counters plus fragmentation's. */
export interface UdpTransportStats extends IpTransportStats {
  /** Messages sent as fragments, and fragments that were malformed, stale or over the reassembly budget. */
  fragmentedOut: number;
  fragmentDrops: number;
  /** Requests for lost fragments sent, fragments sent again on request, and messages given up. */
  fragmentRequests: number;
  fragmentsResent: number;
  fragmentedLost: number;
}

class UdpEdge implements Edge {
  readonly kind: TaKind = 'udp';
  readonly id: string;
  closed = false;
  remoteId = 0;
  /** Created on the first fragment received, and on the first fragmented message sent. */
  reassembly: Reassembly | undefined;
  retained: Retained | undefined;
  /** Lets retained messages go once the edge stops sending large ones. */
  pruneTimer: TimerHandle | undefined;
  private nextMessage: number;
  onPacket: (packet: Uint8Array, edge: Edge) => void = () => {};
  onClose: (edge: Edge, reason: string) => void = () => {};

  constructor(
    private readonly owner: UdpEdgeListener,
    readonly localId: number,
    readonly localTA: TransportAddress,
    readonly remoteTA: TransportAddress,
    readonly inbound: boolean,
  ) {
    this.id = `udp/${localId.toString(16).padStart(8, '0')}`;
    this.nextMessage = (localId ^ 0x5bd1e995) >>> 0; // ids are u32 on the wire and in requests
  }

  send(packet: Uint8Array): void {
    if (this.closed) { this.owner.stats.sendErrors++; return; }
    if (packet.length > UDP_MAX_PAYLOAD) { this.owner.stats.sendErrors++; return; }
    if (packet.length + UDP_HEADER <= MAX_DATAGRAM) this.owner._send(this.remoteTA, T_DATA, this.localId, this.remoteId, packet);
    else {
      this.owner._sendMessage(this, packet, this.nextMessage);
      this.nextMessage = (this.nextMessage + 1) >>> 0;
    }
  }

  close(reason = 'closed'): void {
    if (this.closed) return;
    this.owner._send(this.remoteTA, T_CLOSE, this.localId, this.remoteId);
    this._closed(reason);
  }

  /** Local teardown without telling the peer (used when the peer told us). */
  _closed(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.reassembly?.release();
    this.retained?.release();
    this.pruneTimer?.cancel();
    this.owner._remove(this);
    safeCall(this.owner.stats, () => this.onClose(this, reason));
  }
}

export class UdpEdgeListener implements EdgeListener {
  readonly kind: TaKind = 'udp';
  readonly stats: UdpTransportStats = { fragmentedOut: 0, fragmentDrops: 0, fragmentRequests: 0, fragmentsResent: 0, fragmentedLost: 0, ...newIpStats() };
  onEdge: (edge: Edge) => void = () => {};

  private socket: DatagramSocket | undefined;
  private starting = false;
  private port = 0;
  private readonly advertised: AdvertisedTAs;
  private readonly byLocal = new Map<number, UdpEdge>();
  private readonly byRemote = new Map<string, UdpEdge>();
  private resetWindow = 0;
  private resetsInWindow = 0;
  private readonly receiveBudget = new FragmentBudget();
  /** @internal */
  readonly sendBudget = new FragmentBudget();
  /** Edges with messages under reassembly, checked every REPAIR_TICK_MS while there are any. */
  private readonly repairing = new Set<UdpEdge>();
  private repairTimer: TimerHandle | undefined;

  constructor(private readonly opts: UdpListenerOptions) { this.advertised = new AdvertisedTAs('udp', opts); }

  get edgeCount(): number { return this.byLocal.size; }
  /** True while the socket does batched I/O (fastPath asked for and the addon present). */
  get batched(): boolean { return this.socket?.batched ?? false; }
  localTAs(): TransportAddress[] { return this.socket ? this.advertised.list(this.port) : []; }
  /** The batched socket, while batched I/O is in use (the native fast path borrows its fd). */
  get batch(): BatchSocket | undefined { return this.socket?.batch; }
  /** A live edge of this listener: its ids (remoteId 0: not known yet); undefined for any other edge. */
  edgeIds(e: Edge): { localId: number; remoteId: number } | undefined {
    return e instanceof UdpEdge && !e.closed && this.byLocal.get(e.localId) === e ? { localId: e.localId, remoteId: e.remoteId } : undefined;
  }

  async start(): Promise<void> {
    if (this.socket || this.starting) throw new Error('udp listener already started');
    this.starting = true;
    try {
      this.socket = await openSocket(this.opts.host ?? '0.0.0.0', this.opts.port, this.opts.fastPath ?? fastPathFromEnv() ?? false, {
        onDatagram: (msg, host, port) => {
          try { this.onDatagram(msg, normalizeIp(host), port); } catch { this.stats.handlerErrors++; }
        },
        onError: (n) => { this.stats.socketErrors += n; },
      });
      this.port = this.socket.port;
    } finally {
      this.starting = false;
    }
  }

  async stop(): Promise<void> {
    const sock = this.socket;
    if (!sock) return;
    for (const e of [...this.byLocal.values()]) e.close('listener stopped');
    this.repairTimer?.cancel();
    this.repairTimer = undefined;
    // A close to a hostname TA waits for dns.lookup (ipLookup answers IPs at once): let it out.
    await new Promise((r) => setImmediate(r));
    this.socket = undefined;
    await sock.close();
  }

  async createEdge(ta: TransportAddress): Promise<Edge> {
    if (ta.kind !== 'udp') throw new Error(`udp listener cannot reach ${ta} (kind ${ta.kind})`);
    if (!this.socket) throw new Error('udp listener not started');
    const remote = await resolveTa(ta);
    const edge = new UdpEdge(this, this.freshId(), this.localTaFor(remote.host), remote, false);
    this.byLocal.set(edge.localId, edge);
    return edge;
  }

  private freshId(): number {
    for (;;) {
      const b = this.opts.random.bytes(4);
      const id = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
      if (id !== 0 && !this.byLocal.has(id)) return id;
    }
  }

  private localTaFor(remoteHost: string): TransportAddress {
    const tas = this.localTAs();
    const loop = remoteHost.startsWith('127.') ? tas.find((t) => t.host.startsWith('127.')) : undefined;
    return loop ?? tas[0] ?? new TransportAddress('udp', this.opts.host ?? '0.0.0.0', this.port);
  }

  private onDatagram(msg: Buffer, ip: string, port: number): void {
    transientBytes(msg.length); // its receive buffer (a batch's, or dgram's own) dies young
    if (msg.length < UDP_HEADER || msg[0] !== UDP_WIRE_VERSION || msg[1]! > T_REQUEST) {
      this.stats.malformed++;
      return;
    }
    const type = msg[1]!;
    const sender = msg.readUInt32BE(2);
    const receiver = msg.readUInt32BE(6);
    const carries = type === T_DATA || type === T_FRAGMENT;
    if (sender === 0 || ((type === T_CLOSE || type === T_RESET) && msg.length !== UDP_HEADER)) { this.stats.malformed++; return; }
    this.stats.packetsIn++;
    this.stats.bytesIn += msg.length;

    let edge: UdpEdge | undefined;
    if (receiver !== 0) {
      const e = this.byLocal.get(receiver);
      if (e && e.remoteTA.host === ip && e.remoteTA.port === port && (e.remoteId === 0 || e.remoteId === sender)) edge = e;
    } else {
      edge = this.byRemote.get(remoteKey(ip, port, sender));
    }

    if (type === T_REQUEST) {
      // Never answered with a reset or an edge: only a live edge's peer asks for fragments.
      if (edge) this.resend(edge, msg);
      return;
    }
    if (!carries) {
      if (edge) edge._closed(type === T_CLOSE ? 'closed by peer' : 'reset by peer');
      return;
    }
    if (edge) {
      if (edge.remoteId === 0) {
        edge.remoteId = sender;
        this.byRemote.set(remoteKey(ip, port, sender), edge);
      }
      this.deliver(edge, type, msg);
      return;
    }
    if (receiver !== 0) { this.sendReset(ip, port, receiver, sender); return; }

    const ta = new TransportAddress('udp', ip, port);
    const fresh = new UdpEdge(this, this.freshId(), this.localTaFor(ip), ta, true);
    fresh.remoteId = sender;
    this.byLocal.set(fresh.localId, fresh);
    this.byRemote.set(remoteKey(ip, port, sender), fresh);
    safeCall(this.stats, () => this.onEdge(fresh));
    if (!fresh.closed) this.deliver(fresh, type, msg);
  }

  private deliver(edge: UdpEdge, type: number, msg: Buffer): void {
    if (type === T_DATA) {
      const payload = new Uint8Array(msg.buffer, msg.byteOffset + UDP_HEADER, msg.length - UDP_HEADER);
      safeCall(this.stats, () => edge.onPacket(payload, edge));
      return;
    }
    const re = edge.reassembly ??= new Reassembly(this.receiveBudget,
      (m) => { if (!edge.closed) safeCall(this.stats, () => edge.onPacket(m, edge)); },
      () => { this.stats.fragmentedLost++; });
    const now = this.opts.clock.now();
    if (re.add(msg, now) !== undefined) this.stats.fragmentDrops++;
    // A newer message overtaking an incomplete one means lost fragments: ask at once.
    if (re.due) this.askForMissing(edge, now);
    this.watchRepairs(edge);
  }

  private askForMissing(edge: UdpEdge, now: number): void {
    for (const body of edge.reassembly!.requests(now)) {
      this.stats.fragmentRequests++;
      this._send(edge.remoteTA, T_REQUEST, edge.localId, edge.remoteId, body);
    }
  }

  /** Tail losses have no newer message to reveal them: a timer looks while any message is incomplete. */
  private watchRepairs(edge: UdpEdge): void {
    if (edge.reassembly!.pending > 0) this.repairing.add(edge);
    if (this.repairing.size === 0 || this.repairTimer) return;
    this.repairTimer = this.opts.clock.setInterval(() => {
      const now = this.opts.clock.now();
      for (const e of this.repairing) {
        if (e.closed || !e.reassembly) { this.repairing.delete(e); continue; }
        this.askForMissing(e, now);
        if (e.reassembly.pending === 0) this.repairing.delete(e);
      }
      if (this.repairing.size === 0) { this.repairTimer?.cancel(); this.repairTimer = undefined; }
    }, REPAIR_TICK_MS);
  }

  private resend(edge: UdpEdge, msg: Buffer): void {
    const req = decodeRequest(msg);
    if (!req) { this.stats.malformed++; return; }
    const payload = edge.retained?.take(req.id, req.count, this.opts.clock.now());
    if (!payload || req.missing.length === 0) return;
    this.stats.fragmentsResent += req.missing.length;
    this.sendFragments(edge, payload, req.id, req.missing);
  }

  private sendReset(ip: string, port: number, ourClaimedId: number, theirId: number): void {
    // Rate-limited so spoofed traffic cannot turn us into a reflector.
    const now = this.opts.clock.now();
    if (now - this.resetWindow >= 1000) { this.resetWindow = now; this.resetsInWindow = 0; }
    if (this.resetsInWindow >= RESETS_PER_SECOND) return;
    this.resetsInWindow++;
    this.stats.resetsSent++;
    this._send(new TransportAddress('udp', ip, port), T_RESET, ourClaimedId, theirId);
  }

  /** @internal */
  _send(to: TransportAddress, type: number, sender: number, receiver: number, payload?: Uint8Array): void {
    this.transmit(to, header(type, sender, receiver, UDP_HEADER), payload);
  }

  /** One datagram: a header and the payload, handed to the socket as two buffers. */
  private transmit(to: TransportAddress, head: Buffer, payload?: Uint8Array): void {
    const sock = this.socket;
    if (!sock) { this.stats.sendErrors++; return; }
    try {
      sock.send(head, payload, to.host, to.port);
      this.stats.packetsOut++;
      this.stats.bytesOut += head.length + (payload?.length ?? 0);
    } catch {
      this.stats.sendErrors++;
    }
  }

  /** @internal A message too large for one datagram: sent as fragments, and kept a moment for repairs. */
  _sendMessage(edge: UdpEdge, payload: Uint8Array, msgId: number): void {
    this.stats.fragmentedOut++;
    (edge.retained ??= new Retained(this.sendBudget)).keep(msgId, payload, this.opts.clock.now());
    this.schedulePrune(edge);
    this.sendFragments(edge, payload, msgId);
  }

  private schedulePrune(edge: UdpEdge): void {
    if (edge.pruneTimer) return;
    edge.pruneTimer = this.opts.clock.setTimeout(() => {
      edge.pruneTimer = undefined;
      edge.retained?.prune(this.opts.clock.now());
      if (!edge.closed && (edge.retained?.size ?? 0) > 0) this.schedulePrune(edge);
    }, KEEP_MS + 10);
  }

  /** Fragments of a message (all, or the listed indices), each a datagram sharing the message's buffer. */
  private sendFragments(edge: UdpEdge, payload: Uint8Array, msgId: number, indices?: number[]): void {
    const count = fragmentCount(payload.length);
    const one = (i: number): void => {
      const head = header(T_FRAGMENT, edge.localId, edge.remoteId, FRAGMENT_HEADER);
      writeFragmentFields(head, msgId, i, count);
      this.transmit(edge.remoteTA, head, payload.subarray(i * FRAGMENT_PAYLOAD, (i + 1) * FRAGMENT_PAYLOAD));
    };
    if (indices) for (const i of indices) one(i);
    else for (let i = 0; i < count; i++) one(i);
  }

  /** @internal */
  _remove(e: UdpEdge): void {
    this.byLocal.delete(e.localId);
    if (e.remoteId !== 0) {
      const key = remoteKey(e.remoteTA.host, e.remoteTA.port, e.remoteId);
      if (this.byRemote.get(key) === e) this.byRemote.delete(key);
    }
  }
}

/** A datagram header of `size` bytes with the common 10 filled in. */
function header(type: number, sender: number, receiver: number, size: number): Buffer {
  const head = Buffer.allocUnsafe(size);
  head[0] = UDP_WIRE_VERSION;
  head[1] = type;
  head.writeUInt32BE(sender, 2);
  head.writeUInt32BE(receiver, 6);
  return head;
}

function remoteKey(ip: string, port: number, sender: number): string {
  return `${ip}|${port}|${sender}`;
}
