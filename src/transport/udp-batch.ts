// Batched UDP I/O through the addon's UdpSocket (native/udp.cc): the UDP listener's fast path.
// Reads: one callback per recvmmsg with up to 64 datagrams (UDP GRO buffers are split
// natively), each handed on as a Buffer view into that batch's one Buffer, sized exactly:
// a receiver that keeps a payload keeps its batch's bytes alive (node:dgram: the datagram's);
// receivers may change their payload in place. Writes: each datagram is copied
// (header, then payload) into this socket's send arena, so the caller keeps its buffers as
// with node:dgram; the arena goes to the kernel in one sendmmsg as soon as the receive batch
// being handled (on any batched socket) is done, else at setImmediate, or at once when 64
// datagrams are waiting or the arena is full; with UDP GSO, runs of same-sized datagrams to
// one destination become one segmented send. The native side parses no datagram bytes; it formats source addresses
// from the kernel's sockaddrs (inet_ntop) and parses destination IPs (inet_pton).
import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';
import { loadAddonModule } from '../util/addon.js';

/** What the kernel granted the socket: GRO on receive, GSO (UDP_SEGMENT) on send. */
export interface BatchOffloads { gro: boolean; gso: boolean }

export interface BatchSocketStats {
  datagramsIn: number; batchesIn: number; groBuffers: number;
  datagramsOut: number; sendCalls: number; gsoSends: number; queued: number; socketErrors: number;
}

interface NativeUdp {
  bind(host: string, port: number): number;
  setBuffers(bytes: number): void;
  offloads(): BatchOffloads;
  start(cb: (data: Buffer, meta: Uint32Array, count: number, hosts: string[]) => void): void;
  lend(): number;
  send(bytes: Uint8Array, meta: Uint32Array, count: number, hosts: string[]): number;
  stats(): BatchSocketStats;
  close(): void;
}
type NativeCtor = new (ipv6: boolean, offload: boolean) => NativeUdp;

/** Datagrams per sendmmsg; a full queue is flushed at once. */
const FLUSH_AT = 64;
/** Room for FLUSH_AT full-size datagrams; a larger one is flushed alone from its own buffer. */
const ARENA = 128 * 1024;

let addon: NativeCtor | Error | undefined;
/** Sockets with datagrams queued: flushed when a receive batch has been handled, or at setImmediate. */
const pending = new Set<BatchSocket>();
let immediate = false;
/** True while a receive batch is being handled: its end flushes, no setImmediate needed. */
let receiving = false;

function flushAll(): void {
  for (const s of pending) s.flush();
}

function scheduleFlush(s: BatchSocket): void {
  pending.add(s);
  if (immediate || receiving) return;
  immediate = true;
  setImmediate(() => { immediate = false; flushAll(); });
}

function loadAddon(): NativeCtor | Error {
  if (addon !== undefined) return addon;
  try {
    if (process.platform !== 'linux') throw new Error('batched UDP I/O needs Linux (recvmmsg/sendmmsg)');
    const mod = loadAddonModule() as { UdpSocket?: NativeCtor };
    if (typeof mod.UdpSocket !== 'function') throw new Error('the addon has no UdpSocket: rebuild it (npx node-gyp rebuild)');
    addon = mod.UdpSocket;
  } catch (e) {
    addon = e instanceof Error ? e : new Error(String(e));
  }
  return addon;
}

/** null when batched UDP sockets can be opened here, else a one-line reason. */
export function batchUnavailableReason(): string | null {
  const a = loadAddon();
  return a instanceof Error ? a.message : null;
}

export class BatchSocket {
  readonly #h: NativeUdp;
  /** The turn's datagrams back to back, and per datagram (offset, length, host index, port). */
  #arena = Buffer.allocUnsafeSlow(ARENA);
  #used = 0;
  readonly #meta = new Uint32Array(4 * FLUSH_AT);
  #count = 0;
  #hosts: string[] = [];
  #closed = false;
  /** start()'s batch handler, for a reader the fd is lent to; that reader's stop. */
  #onBatch: ((data: Buffer, meta: Uint32Array, count: number, hosts: string[]) => void) | undefined;
  #borrower: (() => void) | undefined;

  /** Throws when the addon is missing (see batchUnavailableReason) or no socket can be made. */
  readonly #ipv6: boolean;

  constructor(ipv6: boolean, offload: boolean, private readonly onFailed: (count: number) => void) {
    const Ctor = loadAddon();
    if (Ctor instanceof Error) throw Ctor;
    this.#ipv6 = ipv6;
    this.#h = new Ctor(ipv6, offload);
  }

  /** Binds; errors carry the errno name in .code (EADDRINUSE). Returns the bound port. */
  bind(host: string, port: number): number { return this.#h.bind(host, port); }
  setBuffers(bytes: number): void { this.#h.setBuffers(bytes); }
  get offloads(): BatchOffloads { return this.#h.offloads(); }
  get stats(): BatchSocketStats { return this.#h.stats(); }

  /** Begins delivering datagrams (Buffer views into their batch's Buffer) with their raw source address. */
  start(onDatagram: (msg: Buffer, host: string, port: number) => void): void {
    this.#onBatch = (data, meta, count, hosts) => {
      let off = 0;
      const outer = receiving;  // never true today (sends make no callbacks); a nested batch would leave the flush to the outer one
      receiving = true;
      try {
        for (let i = 0; i < 3 * count; i += 3) {
          const len = meta[i]!;
          onDatagram(data.subarray(off, off + len), hosts[meta[i + 2]!]!, meta[i + 1]!);
          off += len;
        }
      } finally {
        receiving = outer;
        if (!outer) flushAll();  // the answers to this batch go out now, in one sendmmsg per socket
      }
    };
    this.#h.start(this.#onBatch);
  }

  /**
   * After start(): stops reading here and lends the fd to a native reader (the native fast
   * path's thread), which hands the datagrams it does not take to `deliver` in the addon's
   * batch format; sends stay here. stop() is called before close() closes the fd.
   */
  lend(stop: () => void): { fd: number; deliver: (data: Buffer, meta: Uint32Array, count: number, hosts: string[]) => void } {
    if (!this.#onBatch || this.#closed) throw new Error('batched socket: not started, or closed');
    if (this.#borrower) throw new Error('batched socket: lent already');
    const fd = this.#h.lend();
    this.#borrower = stop;
    return { fd, deliver: this.#onBatch };
  }

  /** True when the socket is IPv6 (dual stack): addresses for a native sender are then mapped. */
  get ipv6(): boolean { return this.#ipv6; }

  /** Queues one datagram (header, then payload), copied: the caller may reuse both at once. */
  send(head: Uint8Array, payload: Uint8Array | undefined, host: string, port: number): void {
    if (this.#closed) { this.onFailed(1); return; }
    let h = this.#hosts.length - 1;
    if (this.#hosts[h] !== host) {
      h = this.#hosts.indexOf(host);
      if (h < 0) {
        if (isIP(host) === 0) { this.#resolveThenSend(head, payload, host, port); return; }
        h = this.#hosts.push(host) - 1;
      }
    }
    const len = head.length + (payload?.length ?? 0);
    if (this.#used + len > this.#arena.length) this.flush();
    const arena = len <= this.#arena.length ? this.#arena : Buffer.allocUnsafe(len);
    if (h >= this.#hosts.length) h = this.#hosts.push(host) - 1;  // the flush emptied the list
    const off = this.#used;
    arena.set(head, off);
    if (payload) arena.set(payload, off + head.length);
    const m = 4 * this.#count++;
    this.#meta[m] = off; this.#meta[m + 1] = len; this.#meta[m + 2] = h; this.#meta[m + 3] = port;
    if (arena !== this.#arena) { this.#flushFrom(arena); return; }
    this.#used += len;
    if (this.#count >= FLUSH_AT) this.flush();
    else scheduleFlush(this);
  }

  /** Hands every queued datagram to the kernel now. */
  flush(): void {
    if (this.#count > 0) this.#flushFrom(this.#arena);
  }

  #flushFrom(bytes: Buffer): void {
    pending.delete(this);
    const count = this.#count, hosts = this.#hosts;
    this.#count = 0; this.#used = 0; this.#hosts = [];
    const failed = this.#closed ? count : this.#h.send(bytes, this.#meta, count, hosts);
    if (failed > 0) this.onFailed(failed);
  }

  /** Host names go through dns.lookup, as node:dgram does (the listener resolves them earlier); the bytes are copied first. */
  #resolveThenSend(head: Uint8Array, payload: Uint8Array | undefined, host: string, port: number): void {
    head = Uint8Array.from(head);
    payload = payload && Uint8Array.from(payload);
    dnsLookup(host, (err, address) => {
      if (err || isIP(address) === 0) this.onFailed(1);
      else this.send(head, payload, address, port);
    });
  }

  /** Flushes what is queued, then closes the fd. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    const b = this.#borrower;
    this.#borrower = undefined;
    b?.();
    this.#h.close();
  }
}
