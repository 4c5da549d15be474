// Whether a link Status would tell a peer anything it uses, given what we last told it (a
// handshake or an earlier Status): the neighbours we report around it, and our TAs. Our
// relay TA names our ring neighbours and oldest connections, so it changes with almost every
// change of the table; a peer holding an older one still reaches us through it as long as
// most of the forwarders it lists are still ours. Re-sending ~1.7 KB to every peer on each
// such change was most of the maintenance traffic under churn.
import type { TransportAddress } from '../transport/ta.js';
import type { NodeInfo } from './node-info.js';

/** The same TAs in the same order (compared by text). */
export function sameTAs(a: readonly TransportAddress[], b: readonly TransportAddress[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]!.key !== b[i]!.key) return false;
  return true;
}

/** The same nodes, in the same order, with the same TAs. */
export function sameNeighbors(told: readonly NodeInfo[] | undefined, now: readonly NodeInfo[]): boolean {
  if (!told || told.length !== now.length) return false;
  for (let i = 0; i < now.length; i++) {
    const a = told[i]!, b = now[i]!;
    if (!a.address.equals(b.address) || !sameTAs(a.tas, b.tas)) return false;
  }
  return true;
}

/**
 * Whether the TAs a peer holds for us (`told`) still serve: the same direct TAs in the same
 * order, and a relay TA if and only if we have one now, with at least half of the forwarders
 * it lists among those we advertise now.
 */
export function stillServes(told: readonly TransportAddress[], now: readonly TransportAddress[]): boolean {
  if (sameTAs(told, now)) return true;
  let i = 0, j = 0, oldRelay: TransportAddress | undefined, newRelay: TransportAddress | undefined;
  for (;;) {
    while (i < told.length && told[i]!.kind === 'tunnel') oldRelay = told[i++];
    while (j < now.length && now[j]!.kind === 'tunnel') newRelay = now[j++];
    if (i === told.length || j === now.length) break;
    if (told[i++]!.key !== now[j++]!.key) return false;
  }
  if (i !== told.length || j !== now.length) return false;
  if (!oldRelay || !newRelay) return !oldRelay && !newRelay;
  if (oldRelay.host !== newRelay.host) return false;
  const kept = oldRelay.forwarders.filter((f) => newRelay.forwarders.includes(f)).length;
  return kept > 0 && 2 * kept >= oldRelay.forwarders.length;
}
