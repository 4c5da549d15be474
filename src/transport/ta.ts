// TransportAddress: where an EdgeListener can be reached, in Brunet's URI form
// (`brunet.udp://1.2.3.4:5000`). `function` is the in-process transport used by tests.
// `tunnel` is a relay TA: `brunet.tunnel://<target>/<fwd>+<fwd>`, each part the 32-char
// base32 body of a node address (the target, then forwarders it is connected to).
import { isIP } from 'node:net';
import { Interner } from '../util/intern.js';

export type TaKind = 'udp' | 'tcp' | 'function' | 'tunnel';
const KINDS: readonly TaKind[] = ['udp', 'tcp', 'function'];
/** A tunnel TA lists at most this many forwarders; longer lists are rejected. */
export const MAX_TUNNEL_FORWARDERS = 8;
const B32 = '[A-Z2-7]{32}';
const TUNNEL_RE = new RegExp(`^brunet\\.tunnel://(${B32})/(${B32}(?:\\+${B32})*)/?$`, 'i');

/** Shared by every TA that is not a tunnel's. */
const NO_FORWARDERS: readonly string[] = Object.freeze([]);

export class TaError extends Error {
  override name = 'TaError';
}

export class TransportAddress {
  readonly key: string;
  /**
   * udp/tcp/function: host and port. tunnel: host = the target's base32 body, port 0, and
   * `forwarders` the forwarders' base32 bodies (empty for every other kind).
   */
  constructor(readonly kind: TaKind, readonly host: string, readonly port: number, readonly forwarders: readonly string[] = NO_FORWARDERS) {
    // Joined rather than concatenated: the key is kept flat (see keyParts).
    this.key = keyParts(kind, host, port, forwarders).join('');
  }

  /** A tunnel TA from base32 bodies (upper case, 32 characters each; not checked here). */
  static tunnel(target: string, forwarders: readonly string[]): TransportAddress {
    return new TransportAddress('tunnel', target, 0, forwarders);
  }

  /**
   * Parses `brunet.(udp|tcp|function)://host:port` (IPv6 hosts in brackets) or a tunnel TA.
   * TAs are immutable, so equal texts share one instance per process (peers' TAs arrive in
   * every neighbour list), parsed once.
   */
  static parse(text: string): TransportAddress {
    return parsed.get(text, parseTa); // no closure per lookup
  }

  equals(o: TransportAddress): boolean { return this.key === o.key; }
  toString(): string { return this.key; }
}

const parsed = new Interner<TransportAddress>();

/**
 * The key's pieces. V8 keeps `a + b` and template strings longer than 12 characters as a
 * tree of pieces (about 32 bytes per piece, for as long as the string lives); a joined
 * array is one flat string.
 */
function keyParts(kind: TaKind, host: string, port: number, forwarders: readonly string[]): string[] {
  if (kind === 'tunnel') return ['brunet.tunnel://', host, '/', forwarders.join('+')];
  return host.includes(':') ? ['brunet.', kind, '://[', host, ']:', String(port)] : ['brunet.', kind, '://', host, ':', String(port)];
}

function parseTa(text: string): TransportAddress {
  const tm = TUNNEL_RE.exec(text.trim());
  if (tm) {
    const fwds = tm[2]!.toUpperCase().split('+');
    if (fwds.length > MAX_TUNNEL_FORWARDERS) throw new TaError(`tunnel TA lists ${fwds.length} forwarders (at most ${MAX_TUNNEL_FORWARDERS})`);
    return TransportAddress.tunnel(tm[1]!.toUpperCase(), fwds);
  }
  if (/^brunet\.tunnel:/i.test(text.trim())) throw new TaError(`malformed tunnel address ${JSON.stringify(text)} (expected brunet.tunnel://<32 base32>/<32 base32>[+<32 base32>...])`);
  const m = /^brunet\.([a-z]+):\/\/(\[[0-9a-fA-F:.]+\]|[^:/\s\[\]]+):(\d{1,5})\/?$/.exec(text.trim());
  if (!m) throw new TaError(`malformed transport address ${JSON.stringify(text)} (expected brunet.udp://host:port or brunet.tcp://host:port)`);
  // The constant, not the matched substring (which would keep the whole text alive).
  const kind = KINDS.find((k) => k === m[1]);
  if (!kind) throw new TaError(`unsupported transport type "${m[1]}" in ${JSON.stringify(text)}`);
  let host = m[2]!;
  if (host.startsWith('[')) {
    host = host.slice(1, -1);
    if (isIP(host) !== 6) throw new TaError(`invalid IPv6 address in ${JSON.stringify(text)}`);
  }
  const port = Number(m[3]);
  if (port < 1 || port > 65535) throw new TaError(`port ${port} out of range 1-65535 in ${JSON.stringify(text)}`);
  return new TransportAddress(kind, host, port);
}
