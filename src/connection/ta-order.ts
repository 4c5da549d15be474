// Which of a peer's TAs the Linker tries, and in what order.
import type { TransportAddress } from '../transport/ta.js';

export const isLoopback = (host: string): boolean => host.startsWith('127.') || host === '::1' || host === 'localhost';
/** The /24 of an IPv4 host (its LAN, as far as we can tell); other hosts stand for themselves. */
export const lan = (host: string): string => (/^\d+\.\d+\.\d+\.\d+$/.test(host) ? host.slice(0, host.lastIndexOf('.')) : host);

/**
 * The peer's TAs worth trying, in order: direct before relay, and among direct ones a TA on
 * one of our own /24s first (a peer behind the same NAT); our own TAs, duplicates and kinds we
 * cannot dial left out. A peer's loopback TAs are only worth a try when it runs on this host
 * (it shares an address with us, or has nothing but loopback TAs): elsewhere each costs a
 * handshake timeout.
 */
export function orderPeerTAs(mine: readonly TransportAddress[], peerTAs: readonly TransportAddress[], max: number, canDial: (t: TransportAddress) => boolean): TransportAddress[] {
  const own = new Set(mine.map((t) => t.key));
  const ownHosts = new Set(mine.map((t) => t.host));
  const lans = new Set(mine.filter((t) => t.kind !== 'tunnel' && !isLoopback(t.host)).map((t) => lan(t.host)));
  const outside = peerTAs.filter((t) => t.kind !== 'tunnel' && !isLoopback(t.host));
  const sameHost = outside.length === 0 || outside.some((t) => ownHosts.has(t.host));
  const rank = (t: TransportAddress) => (t.kind === 'tunnel' ? 2 : lans.has(lan(t.host)) ? 0 : 1);
  const seen = new Set<string>();
  return peerTAs.filter((t) => !own.has(t.key) && !seen.has(t.key) && seen.add(t.key) && canDial(t) && (sameHost || !isLoopback(t.host)))
    .sort((x, y) => rank(x) - rank(y)).slice(0, max);
}
