// TransportAddress: where an EdgeListener can be reached, in Brunet's URI form
// (`brunet.udp://1.2.3.4:5000`). `function` is the in-process transport used by tests.
import { isIP } from 'node:net';

export type TaKind = 'udp' | 'tcp' | 'function';
const KINDS: readonly TaKind[] = ['udp', 'tcp', 'function'];

export class TaError extends Error {
  override name = 'TaError';
}

export class TransportAddress {
  readonly key: string;
  constructor(readonly kind: TaKind, readonly host: string, readonly port: number) {
    this.key = `brunet.${kind}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }

  /** Parses `brunet.(udp|tcp|function)://host:port`; IPv6 hosts in brackets. */
  static parse(text: string): TransportAddress {
    const m = /^brunet\.([a-z]+):\/\/(\[[0-9a-fA-F:.]+\]|[^:/\s\[\]]+):(\d{1,5})\/?$/.exec(text.trim());
    if (!m) throw new TaError(`malformed transport address ${JSON.stringify(text)} (expected brunet.udp://host:port or brunet.tcp://host:port)`);
    const kind = m[1] as TaKind;
    if (!KINDS.includes(kind)) throw new TaError(`unsupported transport type "${m[1]}" in ${JSON.stringify(text)}`);
    let host = m[2]!;
    if (host.startsWith('[')) {
      host = host.slice(1, -1);
      if (isIP(host) !== 6) throw new TaError(`invalid IPv6 address in ${JSON.stringify(text)}`);
    }
    const port = Number(m[3]);
    if (port < 1 || port > 65535) throw new TaError(`port ${port} out of range 1-65535 in ${JSON.stringify(text)}`);
    return new TransportAddress(kind, host, port);
  }

  equals(o: TransportAddress): boolean { return this.key === o.key; }
  toString(): string { return this.key; }
}
