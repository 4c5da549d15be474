// Linux TAP device, backed by the project's own addon (native/tap.cc, built by node-gyp
// into build/Release/tap.node on npm install). Reads arrive in batches: the addon drains
// the device (up to 64 frames) per event-loop readiness and makes one call with a single
// Buffer plus frame lengths; here that becomes Buffer[] of subarrays over that Buffer.
// Opened with offload, the device exchanges TCP super-packets (see offload.ts): frames the
// kernel marks as such keep their virtio_net_hdr in front, plain ones arrive without it.
import { existsSync, readFileSync } from 'node:fs';
import type { Room } from '../transport/edge.js';
import { paceGc, transientBytes } from '../util/gc-pacer.js';
import { loadAddonModule } from '../util/addon.js';
import { isPlainVnet, OFFLOAD_HEADER } from './offload.js';

export class TapError extends Error {
  override name = 'TapError';
}

export interface TapStats { framesIn: number; framesOut: number; bytesIn: number; bytesOut: number; writeDrops: number }

interface NativeTap {
  name(): string;
  mac(): Buffer;
  setMtu(mtu: number): void;
  setIPv4(address: string, prefixLength: number): void;
  setIPv6(address: string, prefixLength: number): void;
  up(): void;
  start(cb: (err: Error | null, data?: Buffer, lengths?: Uint32Array) => void, head?: number, tail?: number): void;
  lend(): number;
  write(frame: Uint8Array): boolean;
  writeBatch(frames: Uint8Array[], withHeader?: boolean): number;
  offload(): boolean;
  stats(): TapStats;
  close(): void;
}
type NativeCtor = new (name: string, offload?: boolean) => NativeTap;

const TUN = '/dev/net/tun';
/** The most room the addon reserves around a frame (native/tap.cc kMaxRoom). */
const MAX_ROOM = 256;
const CAP_NET_ADMIN = 12;

/** The addon's functions on interfaces other than the TAP (bridge.ts). */
interface NativeLinks {
  bridgePort(bridge: string, port: string, add: boolean): void;
  linkUp(name: string): void;
  setIPv4(name: string, address: string, prefixLength: number): void;
}

let addon: NativeCtor | Error | undefined;
let links: NativeLinks | undefined;

function loadAddon(): NativeCtor | Error {
  if (addon !== undefined) return addon;
  try {
    if (process.platform !== 'linux') throw new Error('TAP devices need Linux');
    const mod = loadAddonModule('the TAP addon') as { Tap?: NativeCtor } & Partial<NativeLinks>;
    if (typeof mod.Tap !== 'function') throw new Error('the TAP addon has no Tap class');
    addon = mod.Tap;
    if (typeof mod.bridgePort === 'function' && typeof mod.linkUp === 'function' && typeof mod.setIPv4 === 'function') {
      links = { bridgePort: mod.bridgePort, linkUp: mod.linkUp, setIPv4: mod.setIPv4 };
    }
  } catch (e) {
    addon = e instanceof Error ? e : new Error(String(e));
  }
  return addon;
}

function hasNetAdmin(): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m !== null && (BigInt('0x' + m[1]) & (1n << BigInt(CAP_NET_ADMIN))) !== 0n;
  } catch {
    return process.getuid?.() === 0;
  }
}

/** null when a TAP can be opened here, else a one-line reason (not root / no /dev/net/tun / addon not built). */
export function tapUnavailableReason(): string | null {
  const a = loadAddon();
  if (a instanceof Error) return a.message;
  if (!existsSync(TUN)) return `${TUN} is missing: load the tun module (modprobe tun)`;
  if (!hasNetAdmin()) return 'no CAP_NET_ADMIN: run as root or grant the capability';
  return null;
}

/** The addon's link functions; TapError when the addon is missing or predates them (rebuild it). */
export function nativeLinks(): NativeLinks {
  const a = loadAddon();
  if (a instanceof Error) throw new TapError(a.message);
  if (!links) throw new TapError('the TAP addon has no bridge support: rebuild it (npx node-gyp rebuild)');
  const l = links;
  return {
    bridgePort: (b, p, add) => call(() => l.bridgePort(b, p, add)), linkUp: (n) => call(() => l.linkUp(n)),
    setIPv4: (n, a, prefix) => call(() => l.setIPv4(n, a, prefix)),
  };
}

// Native failures become TapError; TypeErrors are caller bugs and stay as they are.
function call<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof TypeError || !(e instanceof Error)) throw e;
    throw new TapError(e.message);
  }
}

export class TapDevice {
  readonly name: string;
  readonly mac: Uint8Array;
  /** Frames may be TCP super-packets with a virtio_net_hdr (the device was opened with offload). */
  readonly offload: boolean;
  /** Free bytes around every frame start() delivers (TapDevice.open's `room`); undefined: none. */
  readonly room: Room | undefined;
  readonly #h: NativeTap;
  /** start()'s batch handler, for a reader the fd is lent to. */
  #onBatch: ((err: Error | null, data?: Buffer, lengths?: Uint32Array) => void) | undefined;
  /** Stops the reader the fd is lent to (before close() closes the fd). */
  #borrower: (() => void) | undefined;

  private constructor(h: NativeTap, room: Room | undefined) {
    this.#h = h;
    this.room = room;
    this.name = h.name();
    this.mac = call(() => h.mac());
    this.offload = h.offload();
  }

  /** Creates (or attaches to) the TAP device; it disappears when closed or when the process exits. */
  static open(o: { name: string; mtu?: number; offload?: boolean; room?: Room }): TapDevice {
    if (o.room && !(o.room.head >= 0 && o.room.head <= MAX_ROOM && o.room.tail >= 0 && o.room.tail <= MAX_ROOM)) {
      throw new TapError(`room around frames must be 0..${MAX_ROOM} bytes`);
    }
    const Tap = loadAddon();
    if (Tap instanceof Error) throw new TapError(Tap.message);
    const h = call(() => new Tap(o.name, o.offload ?? false));
    try {
      if (o.mtu !== undefined) call(() => h.setMtu(o.mtu!));
      return new TapDevice(h, o.room);
    } catch (e) {
      h.close();
      throw e;
    }
  }

  get stats(): TapStats {
    return this.#h.stats();
  }

  setMtu(mtu: number): void {
    call(() => this.#h.setMtu(mtu));
  }

  setIPv4(address: string, prefixLength: number): void {
    call(() => this.#h.setIPv4(address, prefixLength));
  }

  /** Adds an IPv6 address; the kernel runs duplicate address detection (about a second) before using it. */
  setIPv6(address: string, prefixLength: number): void {
    call(() => this.#h.setIPv6(address, prefixLength));
  }

  up(): void {
    call(() => this.#h.up());
  }

  /**
   * Begins delivering frames; each call gets one batch read in one go. The frames are
   * views into one Buffer per batch, so keeping one alive keeps that batch's memory.
   * With offload, `offloaded[i] === 1` marks a frame that still starts with its kernel
   * virtio_net_hdr (a super-packet or a partial checksum); offloaded is null when none does.
   * With a `room`, every frame has room.head free bytes before it and room.tail after it in
   * that Buffer (more before a plain frame on an offload device: its zero kernel header), all
   * the callback's to overwrite: that is what lets the VPN seal frames where they lie.
   * A read error (e.g. the interface was deleted) closes the device and goes to onError,
   * or is thrown as uncaught without one. While started, the device keeps the process alive.
   */
  start(onFrames: (frames: Buffer[], offloaded: Uint8Array | null) => void, onError?: (err: TapError) => void): void {
    const vnet = this.offload;
    const head = this.room?.head ?? 0, tail = this.room?.tail ?? 0;
    paceGc(); // a process moving frames paces its collections (gc-pacer.ts)
    this.#onBatch = (err, data, lengths) => {
      if (err) {
        this.close();
        const e = new TapError(err.message);
        if (onError) onError(e);
        else throw e;
        return;
      }
      transientBytes(data!.length); // the batch's Buffer dies with its frames, young
      const frames = new Array<Buffer>(lengths!.length);
      let offloaded: Uint8Array | null = null;
      let off = 0;
      for (let i = 0; i < frames.length; i++) {
        off += head;
        const end = off + lengths![i]!;
        if (!vnet) frames[i] = data!.subarray(off, end);
        else if (isPlainVnet(data!, off)) frames[i] = data!.subarray(off + OFFLOAD_HEADER, end);
        else { frames[i] = data!.subarray(off, end); (offloaded ??= new Uint8Array(frames.length))[i] = 1; }
        off = end + tail;
      }
      onFrames(frames, offloaded);
    };
    call(() => this.#h.start(this.#onBatch!, head, tail));
  }

  /**
   * After start(): stops reading here and lends the fd to a native reader (the native fast
   * path's thread), which hands what it does not take to `deliver` in start()'s batch format
   * (room included). stop() is called before close() closes the fd. Writes stay here.
   */
  lend(stop: () => void): { fd: number; deliver: (err: Error | null, data?: Buffer, lengths?: Uint32Array) => void } {
    if (!this.#onBatch) throw new TapError(`tap device ${this.name} is not started`);
    if (this.#borrower) throw new TapError(`tap device ${this.name} is lent already`);
    const fd = call(() => this.#h.lend());
    this.#borrower = stop;
    return { fd, deliver: this.#onBatch };
  }

  /** Writes one frame; false when it was dropped (counted in stats.writeDrops). */
  write(frame: Uint8Array): boolean {
    return this.#h.write(frame);
  }

  /**
   * Writes many frames in one native call; returns how many were accepted. withHeader:
   * each frame starts with a kernel virtio_net_hdr (only on a device opened with offload).
   */
  writeBatch(frames: Uint8Array[], withHeader = false): number {
    return call(() => this.#h.writeBatch(frames, withHeader));
  }

  /** Stops reading and closes the fd, which removes the device. Idempotent. */
  close(): void {
    const b = this.#borrower;
    this.#borrower = undefined;
    b?.();
    this.#h.close();
  }
}
