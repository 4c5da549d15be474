// An in-memory TAP for VPN tests: frames go in with inject(), and every frame the VPN
// writes is kept (copied) in `written`, with `headers[i]` saying whether it was written
// after a kernel virtio_net_hdr (only on a device with offload). With a `room` it delivers
// each frame with that many free bytes around it, as TapDevice does with IpopConfig/FastPath.
import type { Room } from '../../src/transport/edge.js';
import type { FrameDevice } from '../../src/vpn/frame-path.js';
import { encodeOffloadHeader, OFFLOAD_HEADER, wireToVnet, type OffloadMeta } from '../../src/vpn/offload.js';

export class FakeTap implements FrameDevice {
  readonly mac: Uint8Array;
  written: Uint8Array[] = [];
  headers: boolean[] = [];
  private cb?: (f: Uint8Array[], offloaded?: Uint8Array | null) => void;

  /** mac: the whole address, or its last byte (default random); offload: as TapDevice.offload; room: as TapDevice.room. */
  constructor(mac: Uint8Array | number = Math.floor(Math.random() * 250), public offload = false, readonly room?: Room) {
    this.mac = typeof mac === 'number' ? new Uint8Array([0x02, 0, 0, 0, 0, mac]) : mac;
  }

  start(cb: (f: Uint8Array[], offloaded?: Uint8Array | null) => void): void { this.cb = cb; }
  /** Delivers f, or with a room a copy of f with room around it (then the caller keeps f). */
  inject(f: Uint8Array): void { this.cb!([this.room ? this.withRoom(f) : f]); }

  /** f copied into a buffer with this device's room around it (the room filled with 0xee). */
  withRoom(f: Uint8Array): Uint8Array {
    const head = this.room?.head ?? 0, tail = this.room?.tail ?? 0;
    const b = new Uint8Array(head + f.length + tail).fill(0xee);
    b.set(f, head);
    return b.subarray(head, head + f.length);
  }

  /** As TapDevice delivers an offloaded frame: the kernel's virtio_net_hdr, then the frame. Returns that header. */
  injectOffloaded(meta: OffloadMeta, frame: Uint8Array): Uint8Array {
    const whole = this.withRoom(new Uint8Array(OFFLOAD_HEADER + frame.length));
    encodeOffloadHeader(meta, whole);
    wireToVnet(whole, 0);
    whole.set(frame, OFFLOAD_HEADER);
    const kernelHeader = whole.slice(0, OFFLOAD_HEADER);
    this.cb!([whole], Uint8Array.of(1));
    return kernelHeader;
  }

  writeBatch(fs: Uint8Array[], withHeader = false): number {
    for (const f of fs) { this.written.push(f.slice()); this.headers.push(withHeader); }
    return fs.length;
  }

  clear(): void { this.written = []; this.headers = []; }
  close(): void {}
}
