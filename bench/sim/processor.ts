// The meter of the simulator's measured processor (VirtualClock with a meter): how much
// processing the simulation's own event callbacks take, in ms, so that each simulated event
// costs what the real node code took to handle it on this machine. The clock reads it before
// and after every event. It counts CPU time, not wall time: on a shared machine the wall time
// of a 50 µs handler is sometimes 50 µs and sometimes a 4 ms wait for a core, and that would
// make a few events cost a hundred times too much. Node 20 reads a precise CPU clock only for
// the whole process (process.cpuUsage, getrusage: µs resolution, about 1 µs a call), which
// also counts V8's helper threads (concurrent marking, parallel scavenges, the optimising
// compiler). bench:ring's event loop does not wait for those, so the process CPU is scaled by
// the main thread's share of it: the main thread's run time (/proc/thread-self/schedstat,
// which only advances in scheduler ticks, so it is read over windows of WINDOW_MS of process
// CPU) over the process CPU of the previous window. Where schedstat is missing the share is 1.
import { closeSync, openSync, readSync } from 'node:fs';
import { SOCKET_BUFFER } from '../../src/transport/udp-socket.js';

/** Process CPU ms between two readings of the main thread's share (a tick is a few ms). */
const WINDOW_MS = 500;

export interface ProcessorMeter {
  /** Processing ms so far (monotonic): VirtualClock's meter. */
  read: () => number;
  /** The main thread's share of the process CPU since the meter was made (1 where unknown). */
  share(): number;
  close(): void;
}

export function processorMeter(): ProcessorMeter {
  let fd = -1;
  try { fd = openSync('/proc/thread-self/schedstat', 'r'); } catch { /* not Linux: share 1 */ }
  const buf = Buffer.alloc(128);
  /** The main thread's run time so far, ms. */
  const mainMs = (): number => {
    const n = readSync(fd, buf, 0, buf.length, 0);
    return Number(buf.toString('latin1', 0, n).split(' ')[0]) / 1e6;
  };
  const cpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
  let acc = 0, factor = 1, last = cpuMs();
  let win = { cpu: last, main: fd >= 0 ? mainMs() : 0 };
  const start = win;
  return {
    read: () => {
      const c = cpuMs();
      acc += (c - last) * factor;
      last = c;
      if (fd >= 0 && c - win.cpu >= WINDOW_MS) {
        const m = mainMs();
        factor = Math.min(1, Math.max(0.1, (m - win.main) / (c - win.cpu)));
        win = { cpu: c, main: m };
      }
      return acc;
    },
    share: () => fd < 0 ? 1 : Math.min(1, (mainMs() - start.main) / (cpuMs() - start.cpu)),
    close: () => { if (fd >= 0) closeSync(fd); fd = -1; },
  };
}

/** Datagram sizes at which the receive buffer's capacity is measured (up to a 1,500-byte MTU's payload). */
const SIZES = [64, 128, 256, 512, 1024, 1472];

/** Datagrams sent at a socket in one turn to fill its buffer (an 8 MB buffer holds about 10,000 small ones). */
const FILL = 40_000;

/**
 * How many datagrams of a size the receive buffer of bench:ring's sockets holds on this machine:
 * the UDP listener asks for SOCKET_BUFFER (udp-socket.ts), the kernel grants twice that capped at
 * rmem_max, and each datagram takes its truesize. For SIZES, sends FILL datagrams to such a
 * socket within one turn of the event loop, before it reads any, and counts what arrives. A
 * size between two measured ones counts as the larger.
 */
export async function measureRcvbuf(): Promise<(bytes: number) => number> {
  const { createSocket } = await import('node:dgram');
  const caps: number[] = [];
  for (const size of SIZES) {
    const r = createSocket('udp4'), s = createSocket('udp4');
    try {
      await new Promise<void>((ok) => r.bind(0, '127.0.0.1', ok));
      await new Promise<void>((ok) => s.bind(0, '127.0.0.1', ok));
      r.setRecvBufferSize(SOCKET_BUFFER);
      let got = 0;
      r.on('message', () => { got++; });
      const buf = Buffer.alloc(size), port = r.address().port;
      for (let i = 0; i < FILL; i++) s.send(buf, port, '127.0.0.1');
      let last = -1;
      for (let i = 0; i < 50 && (i < 5 || got !== last); i++) { last = got; await new Promise((ok) => setTimeout(ok, 20)); }
      if (got === 0 || got >= FILL) throw new Error(`receive buffer measurement: ${got} of ${FILL} ${size}-byte datagrams arrived`);
      caps.push(got);
    } finally { r.close(); s.close(); }
  }
  return (bytes) => { const i = SIZES.findIndex((s) => s >= bytes); return caps[i < 0 ? caps.length - 1 : i]!; };
}

/**
 * The CPU ms one datagram costs a Node process on loopback UDP beyond the handler that reads it
 * (sendto, the kernel's loopback delivery, the poll and recvmsg, the 'message' dispatch): two
 * sockets bounce `count` datagrams of 150 bytes, 32 in flight, with handlers that only send
 * them back; process CPU over datagrams. The simulator's in-memory transport does none of this.
 */
export async function measureUdpCost(count = 40_000): Promise<number> {
  const { createSocket } = await import('node:dgram');
  const a = createSocket('udp4'), b = createSocket('udp4');
  try {
    await new Promise<void>((ok) => a.bind(0, '127.0.0.1', ok));
    await new Promise<void>((ok) => b.bind(0, '127.0.0.1', ok));
    const pa = a.address().port, pb = b.address().port, buf = Buffer.alloc(150);
    b.on('message', (m) => { b.send(m, pa, '127.0.0.1'); });
    const bounce = (n: number) => new Promise<void>((done, fail) => {
      let got = 0;
      const t = setTimeout(() => fail(new Error(`UDP cost measurement: ${got} of ${n} datagrams came back within 60 s`)), 60_000);
      a.removeAllListeners('message');
      a.on('message', (m) => { if (++got >= n) { clearTimeout(t); done(); } else a.send(m, pb, '127.0.0.1'); });
      for (let i = 0; i < 32; i++) a.send(buf, pb, '127.0.0.1');
    });
    await bounce(count / 4); // warm-up: JIT, socket buffers
    const c0 = process.cpuUsage();
    await bounce(count);
    const c = process.cpuUsage(c0);
    return (c.user + c.system) / 1000 / (2 * count);
  } finally { a.close(); b.close(); }
}

/**
 * Where the UDP path's CPU goes in a profile: Node's dgram module, our socket wrapper, and native
 * code outside JS (libuv's poll and recvmsg, the 'message' callback's entry).
 */
const UDP_PATH = (url: string, fn: string): boolean =>
  url === 'node:dgram' || url.startsWith('node:internal/dgram') || url.endsWith('/transport/udp-socket.js') || fn === '(program)';

/**
 * The UDP path's CPU measured in place (bench:ring, BENCH_IO_PROFILE=1): samples this process's
 * main thread with V8's profiler from now until stop(), which returns the ms spent in UDP_PATH
 * frames (their self time), and in the native functions they call (the socket's send, where the
 * kernel delivers a loopback datagram). udp.ts itself is left out: its counterpart, the in-memory
 * transport, is measured by the simulator's processor as part of each handler. Sampling every
 * 1 ms costs the process a few per cent; the caller should not time this run.
 */
export async function profileUdpPath(): Promise<{ stop(): Promise<number> }> {
  const { Session } = await import('node:inspector/promises');
  const s = new Session();
  s.connect();
  await s.post('Profiler.enable');
  await s.post('Profiler.start');
  return {
    stop: async () => {
      const { profile } = await s.post('Profiler.stop');
      s.disconnect();
      const self = new Map<number, number>();
      profile.samples?.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas?.[i] ?? 0)));
      const byId = new Map(profile.nodes.map((n) => [n.id, n]));
      const counted = new Set<number>();
      const visit = (id: number, parentCounted: boolean): void => {
        const n = byId.get(id)!, { url, functionName: fn } = n.callFrame;
        const native = url === '' && !fn.startsWith('(');
        if (UDP_PATH(url, fn) || (native && parentCounted)) counted.add(id);
        for (const c of n.children ?? []) visit(c, counted.has(id));
      };
      visit(profile.nodes[0]!.id, false);
      let us = 0;
      for (const id of counted) us += self.get(id) ?? 0;
      return us / 1000;
    },
  };
}
