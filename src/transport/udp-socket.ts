// The UDP listener's socket: node:dgram (the reference path), or the addon's batched socket
// (udp-batch.ts) when the fast path is asked for and available. Both deliver every datagram
// with its source and send a header plus payload; everything above (udp.ts) is the same.
import dgram from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';
import { BatchSocket, batchUnavailableReason } from './udp-batch.js';

export interface DatagramSocket {
  readonly port: number;
  /** True when batched (recvmmsg/sendmmsg) I/O is in use. */
  readonly batched: boolean;
  /** The batched socket (its counters and offloads), when batched. */
  readonly batch?: BatchSocket;
  /** One datagram; never throws for a network error (those reach onError). */
  send(head: Uint8Array, payload: Uint8Array | undefined, host: string, port: number): void;
  close(): Promise<void>;
}

export interface SocketHandlers {
  onDatagram(msg: Buffer, host: string, port: number): void;
  /** A socket error after start (ICMP-driven, a refused send): counted, never thrown. */
  onError(count: number): void;
}

/** Bursts (a VPN's TCP stream) overflow the default ~200 KB queue; the kernel caps the request at rmem_max/wmem_max. */
export const SOCKET_BUFFER = 4 << 20;

/** Environment override for tests and benchmarks: BRUNET_FASTPATH=1 or 0. */
export function fastPathFromEnv(): boolean | undefined {
  const v = process.env['BRUNET_FASTPATH'];
  return v === '1' ? true : v === '0' ? false : undefined;
}

/**
 * Binds host:port; rejects with "udp port P: address already in use" and the like. With
 * fastPath, the batched socket is used unless the addon is missing; then node:dgram is.
 */
export async function openSocket(host: string, port: number, fastPath: boolean, h: SocketHandlers): Promise<DatagramSocket> {
  if (fastPath && batchUnavailableReason() === null) return openBatched(host, port, h);
  return openDgram(host, port, h);
}

function failure(port: number, code: string | undefined, message: string): Error {
  return new Error(`udp port ${port}: ${code === 'EADDRINUSE' ? 'address already in use' : message}`);
}

function openBatched(host: string, port: number, h: SocketHandlers): DatagramSocket {
  const sock = new BatchSocket(isIP(host) === 6, true, (n) => h.onError(n));
  let bound: number;
  try {
    bound = sock.bind(host, port);
  } catch (e) {
    sock.close();
    const err = e as NodeJS.ErrnoException;
    throw failure(port, err.code, err.message);
  }
  sock.setBuffers(SOCKET_BUFFER);
  sock.start((msg, from, fromPort) => h.onDatagram(msg, from, fromPort));
  return {
    port: bound,
    batched: true,
    batch: sock,
    send: (head, payload, to, toPort) => sock.send(head, payload, to, toPort),
    close: async () => sock.close(),
  };
}

function openDgram(host: string, port: number, h: SocketHandlers): Promise<DatagramSocket> {
  const sock = dgram.createSocket({ type: isIP(host) === 6 ? 'udp6' : 'udp4', lookup: ipLookup });
  return new Promise((resolve, reject) => {
    const onStartError = (err: NodeJS.ErrnoException): void => {
      try { sock.close(); } catch { /* never bound */ }
      reject(failure(port, err.code, err.message));
    };
    sock.once('error', onStartError);
    sock.bind({ port, address: host, exclusive: true }, () => {
      sock.off('error', onStartError);
      try { sock.setRecvBufferSize(SOCKET_BUFFER); sock.setSendBufferSize(SOCKET_BUFFER); } catch { /* keep the defaults */ }
      sock.on('error', () => h.onError(1));
      sock.on('message', (msg, rinfo) => h.onDatagram(msg, rinfo.address, rinfo.port));
      resolve({
        port: sock.address().port,
        batched: false,
        // Header and payload from two buffers (sendmsg's iovec), so the payload is not copied.
        // No completion callback: it would cost a tick per datagram; a failed send surfaces as a socket error.
        send: (head, payload, to, toPort) => sock.send(payload ? [head, payload] : head, toPort, to),
        close: () => new Promise<void>((r) => { try { sock.close(() => r()); } catch { r(); } }),
      });
    });
  });
}

/**
 * dgram resolves every destination before sending; ours are IPs already (createEdge
 * resolves names), so answer at once instead of a tick later through dns.lookup (which
 * also takes the family dgram actually passes as a number).
 */
function ipLookup(address: string, family: LookupOneOptions, cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  const f = isIP(address);
  if (f !== 0) cb(null, address, f);
  else dnsLookup(address, family, cb);
}
