import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';

// Ports handed to a child process are picked below Linux's ephemeral range (32768–60999 by
// default): a port the kernel found free for us could be handed, between our check and the
// child's bind, to any other process binding port 0, which a port outside that range cannot.
const LOW = 20000, SPAN = 12000;

function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => { s.close(); resolve(false); });
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function pick(check: (port: number) => Promise<boolean>): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = LOW + Math.floor(Math.random() * SPAN);
    if (await check(port)) return port;
  }
  throw new Error(`no free port among 50 tries in ${LOW}–${LOW + SPAN - 1}`);
}

/** A TCP port free on 127.0.0.1 right now, outside the ephemeral range. */
export function freeTcpPort(): Promise<number> {
  return pick(tcpFree);
}

/** A port free for both UDP and TCP on 127.0.0.1 right now, outside the ephemeral range. */
export function freeUdpPort(): Promise<number> {
  return pick(async (p) => (await udpFree(p)) && (await tcpFree(p)));
}
