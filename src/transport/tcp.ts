// TCP transport: one server per listener, one TCP connection per edge.
// Framing: u32 big-endian length, then that many payload bytes. A zero-length frame or
// one longer than maxFrame is a protocol error that closes the edge: the stream can
// no longer be trusted to be in sync.
import net from 'node:net';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Edge, EdgeListener } from './edge.js';
import { TransportAddress, type TaKind } from './ta.js';
import { AdvertisedTAs, newIpStats, normalizeIp, resolveTa, safeCall, type IpListenerOptions, type IpTransportStats } from './ip.js';

export interface TcpListenerOptions extends IpListenerOptions {
  /** Default 5000. */
  connectTimeoutMs?: number;
  /** Largest accepted/sent frame payload; default 1 MiB. */
  maxFrame?: number;
}

const DEFAULT_MAX_FRAME = 1 << 20;
// Beyond this much unsent data the peer is not keeping up; dropping is the
// best-effort answer (same as a full UDP socket buffer) rather than unbounded memory.
const MAX_WRITE_BACKLOG = 16 << 20;
// How long a closing edge may take to flush before the socket is destroyed.
const CLOSE_LINGER_MS = 2000;

class TcpEdge implements Edge {
  readonly kind: TaKind = 'tcp';
  closed = false;
  onPacket: (packet: Uint8Array, edge: Edge) => void = () => {};
  onClose: (edge: Edge, reason: string) => void = () => {};
  private chunks: Buffer[] = [];
  private buffered = 0;
  private linger: TimerHandle | undefined;

  constructor(
    private readonly owner: TcpEdgeListener,
    private readonly socket: net.Socket,
    readonly id: string,
    readonly localTA: TransportAddress,
    readonly remoteTA: TransportAddress,
    readonly inbound: boolean,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      try { this.onData(d); } catch { owner.stats.handlerErrors++; }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      owner.stats.socketErrors++;
      // Named like the UDP transport's reset: the peer no longer knows this connection (it
      // restarted, or our public address changed under it), so the link layer re-links at once.
      this.teardown(err.code === 'ECONNRESET' ? 'reset by peer' : `socket error: ${err.code ?? err.message}`);
    });
    socket.on('end', () => this.teardown('closed by peer'));
    socket.on('close', () => {
      this.linger?.cancel();
      this.teardown('connection closed');
    });
  }

  send(packet: Uint8Array): void {
    const st = this.owner.stats;
    if (this.closed || packet.length === 0 || packet.length > this.owner.maxFrame
      || this.socket.writableLength > MAX_WRITE_BACKLOG) {
      st.sendErrors++;
      return;
    }
    const hdr = Buffer.allocUnsafe(4);
    hdr.writeUInt32BE(packet.length, 0);
    try {
      this.socket.cork();
      this.socket.write(hdr);
      this.socket.write(packet);
      this.socket.uncork();
      st.packetsOut++;
      st.bytesOut += packet.length + 4;
    } catch {
      st.sendErrors++;
    }
  }

  close(reason = 'closed'): void {
    if (this.closed) return;
    // Flush what was already sent, then FIN; destroy if the peer never drains.
    this.socket.destroySoon();
    this.linger = this.owner.clock.setTimeout(() => this.socket.destroy(), CLOSE_LINGER_MS);
    this.teardown(reason);
  }

  /** Destroy immediately (listener stop). */
  _abort(reason: string): void {
    this.socket.destroy();
    this.teardown(reason);
  }

  private teardown(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.linger) this.socket.destroySoon();
    this.owner._remove(this);
    safeCall(this.owner.stats, () => this.onClose(this, reason));
  }

  private onData(d: Buffer): void {
    if (this.closed) return;
    const st = this.owner.stats;
    this.chunks.push(d);
    this.buffered += d.length;
    while (this.buffered >= 4 && !this.closed) {
      const head = this.peek(4);
      const len = head.readUInt32BE(0);
      if (len === 0 || len > this.owner.maxFrame) {
        st.malformed++;
        this.close(`protocol error: frame length ${len} (max ${this.owner.maxFrame})`);
        return;
      }
      if (this.buffered < 4 + len) return;
      const frame = this.take(4 + len).subarray(4);
      st.packetsIn++;
      st.bytesIn += 4 + len;
      safeCall(st, () => this.onPacket(frame, this));
    }
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    if (this.chunks[0]!.length < n) this.chunks = [Buffer.concat(this.chunks)];
    const first = this.chunks[0]!;
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}

export class TcpEdgeListener implements EdgeListener {
  readonly kind: TaKind = 'tcp';
  readonly stats: IpTransportStats = newIpStats();
  readonly maxFrame: number;
  readonly clock: Clock;
  onEdge: (edge: Edge) => void = () => {};

  private server: net.Server | undefined;
  private port = 0;
  private readonly advertised: AdvertisedTAs;
  private readonly edges = new Set<TcpEdge>();
  private seq = 0;

  constructor(private readonly opts: TcpListenerOptions) {
    this.maxFrame = opts.maxFrame ?? DEFAULT_MAX_FRAME;
    this.advertised = new AdvertisedTAs('tcp', opts);
    this.clock = opts.clock;
  }

  get edgeCount(): number { return this.edges.size; }
  localTAs(): TransportAddress[] { return this.server ? this.advertised.list(this.port) : []; }

  start(): Promise<void> {
    if (this.server) return Promise.reject(new Error('tcp listener already started'));
    const server = net.createServer((s) => this.accept(s));
    this.server = server;
    return new Promise((resolve, reject) => {
      const onStartError = (err: NodeJS.ErrnoException): void => {
        this.server = undefined;
        server.close();
        const what = err.code === 'EADDRINUSE' ? 'address already in use' : err.message;
        reject(new Error(`tcp port ${this.opts.port}: ${what}`));
      };
      server.once('error', onStartError);
      server.listen({ port: this.opts.port, host: this.opts.host ?? '0.0.0.0', exclusive: true }, () => {
        server.off('error', onStartError);
        server.on('error', () => { this.stats.socketErrors++; });
        this.port = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const e of [...this.edges]) e._abort('listener stopped');
    await new Promise<void>((r) => server.close(() => r()));
  }

  createEdge(ta: TransportAddress): Promise<Edge> {
    if (ta.kind !== 'tcp') return Promise.reject(new Error(`tcp listener cannot reach ${ta} (kind ${ta.kind})`));
    if (!this.server) return Promise.reject(new Error('tcp listener not started'));
    const timeoutMs = this.opts.connectTimeoutMs ?? 5000;
    return resolveTa(ta).then((remote) => new Promise<Edge>((resolve, reject) => {
      const sock = net.connect({ host: remote.host, port: remote.port });
      let done = false;
      const fail = (msg: string): void => {
        if (done) return;
        done = true;
        timer.cancel();
        sock.destroy();
        reject(new Error(`tcp connect to ${ta}: ${msg}`));
      };
      const timer = this.clock.setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);
      sock.once('error', (err: NodeJS.ErrnoException) => fail(err.code === 'ECONNREFUSED' ? 'connection refused' : err.message));
      sock.once('connect', () => {
        if (done) return;
        if (!this.server) { fail('listener stopped'); return; }
        done = true;
        timer.cancel();
        resolve(this.register(sock, remote, false));
      });
    }), (err: Error) => { throw new Error(`tcp connect to ${ta}: ${err.message}`); });
  }

  private accept(sock: net.Socket): void {
    // Swallow errors until the edge owns the socket: nothing may go unhandled.
    sock.on('error', () => {});
    if (!this.server || sock.remoteAddress === undefined || sock.remotePort === undefined) {
      sock.destroy();
      return;
    }
    const remote = new TransportAddress('tcp', normalizeIp(sock.remoteAddress), sock.remotePort);
    const edge = this.register(sock, remote, true);
    safeCall(this.stats, () => this.onEdge(edge));
  }

  private register(sock: net.Socket, remote: TransportAddress, inbound: boolean): TcpEdge {
    const local = new TransportAddress('tcp', normalizeIp(sock.localAddress ?? this.opts.host ?? '0.0.0.0'), this.port);
    const edge = new TcpEdge(this, sock, `tcp/${++this.seq}`, local, remote, inbound);
    this.edges.add(edge);
    return edge;
  }

  /** @internal */
  _remove(e: TcpEdge): void { this.edges.delete(e); }
}
