import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';

/** A TCP port free on 127.0.0.1 right now. */
export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
  });
}

/** A port free for both UDP and TCP on 127.0.0.1 right now. */
export async function freeUdpPort(): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const p = await new Promise<number>((resolve, reject) => {
      const s = createSocket('udp4');
      s.once('error', reject);
      s.bind(0, '127.0.0.1', () => { const port = s.address().port; s.close(() => resolve(port)); });
    });
    return p;
  }
  throw new Error('no free port');
}
