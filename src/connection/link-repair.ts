// Keeping links alive across NATs and address changes, on top of the LinkManager: moving a
// connection to a better edge, opening our NAT towards a peer about to dial us, asking a peer
// how it sees us, and re-linking after our own address changed. These work with the
// LinkManager's handshake and unlinked-edge bookkeeping (its members marked @internal).
import type { Edge } from '../transport/edge.js';
import type { TransportAddress } from '../transport/ta.js';
import { Connection, typeRank } from './connection.js';
import { dialable, type LinkManager } from './link-manager.js';
import { encodeLink, LinkError } from './link-wire.js';
import { isLoopback } from './ta-order.js';

/**
 * Moves a linked connection onto a new edge over one of `tas` (a direct edge replacing a
 * relay one). The handshake names the peer as target, so the peer drops its old edge for
 * the new one (see onStart); we do the same here. Resolves with the new connection.
 */
export async function replaceEdge(lm: LinkManager, c: Connection, peerTAs: TransportAddress[]): Promise<Connection | null> {
  const tas = lm.candidateTAs(peerTAs).filter((t) => t.kind !== c.edge.kind);
  for (const ta of tas) {
    const l = lm.listenerFor(ta)!;
    if (lm.table.get(c.address) !== c || lm.leaving) return null;
    let edge: Edge;
    try { edge = await l.createEdge(ta); } catch { continue; }
    lm.adopt(edge);
    const r = await lm.handshake(edge, c.address, c.type, '', ta === tas[tas.length - 1] ? lm.opts.handshakeResends : Math.min(2, lm.opts.handshakeResends));
    const cur = lm.table.get(c.address);
    if (r?.code === LinkError.Ok && r.local.address.equals(c.address) && (!edge.peer || edge.peer.address.equals(c.address)) && !lm.leaving) {
      if (cur && cur.edge !== edge) { lm.drop(cur, 'replaced by a better edge'); cur.edge.close('replaced'); }
      let conn = lm.table.getByEdge(edge);
      if (!conn) {
        conn = new Connection(c.address, edge, cur && typeRank(cur.type) > typeRank(c.type) ? cur.type : c.type, c.initiator, lm.clock.now(), r.local);
        conn.reportNeighbors(r.neighbors);
        lm.unlinked.delete(edge);
        lm.table.add(conn);
        lm.stats.linked++;
      }
      lm.log.debug(`moved ${c.address.key} from ${c.edge.kind} to ${edge.kind} (${edge.remoteTA})`);
      return conn;
    }
    if (!lm.table.getByEdge(edge)) { lm.unlinked.delete(edge); edge.close('replacement failed'); }
  }
  return null;
}

/**
 * Opens our NAT mappings towards a peer that is about to dial us: a few pings from our
 * listening sockets to each of its direct TAs. The probe edges stay unlinked and expire.
 */
export function probe(lm: LinkManager, tas: TransportAddress[]): void {
  for (const ta of tas.filter((t) => t.kind === 'udp' && !isLoopback(t.host)).slice(0, 4)) {
    lm.listenerFor(ta)?.createEdge(ta).then((e) => {
      lm.adopt(e);
      for (let i = 0; i < 3; i++) lm.clock.setTimeout(() => { if (!e.closed) e.send(encodeLink({ t: 'ping', nonce: i })); }, i * 300);
    }, () => {});
  }
}

/**
 * Asks a peer we are already linked to, over a fresh edge to `ta`, how it sees us: it
 * refuses the duplicate link, and the refusal carries our address as it saw it (STUN-like;
 * the way a node behind a NAT learns its public UDP mapping when nobody links to it).
 */
export async function reflect(lm: LinkManager, ta: TransportAddress): Promise<TransportAddress | undefined> {
  const l = lm.listenerFor(ta);
  if (!l || lm.leaving) return undefined;
  let edge: Edge;
  try { edge = await l.createEdge(ta); } catch { return undefined; }
  lm.adopt(edge);
  const r = await lm.handshake(edge, undefined, 'leaf', 'reflect', 1);
  if (!lm.table.getByEdge(edge)) { lm.unlinked.delete(edge); edge.close('reflect done'); }
  if (!r || r.code !== LinkError.AlreadyConnected || !r.remoteTA || edge.kind !== 'udp') return undefined;
  // A view counts for the peer that proved its address on this edge (or, unsecured, that claims it).
  const from = edge.peer?.address ?? r.local.address;
  if (!from.equals(r.local.address)) return undefined;
  lm.events.emit('observedTA', r.remoteTA, from);
  return r.remoteTA;
}

/**
 * Pings every direct connection and re-links those that stay silent for `waitMs`: after our
 * address changed, edges bound to the old one are dead, and waiting for the keepalive
 * timeout would keep the overlords from re-linking for half a minute. The new link names
 * the peer as target, so the peer swaps its stale connection for it at once (and stops
 * routing our traffic into the old address).
 */
export function revalidate(lm: LinkManager, waitMs = 1000): void {
  const since = lm.clock.now();
  // Relayed connections are not pinged (their forwarders are), but one that died with its
  // forwarder connections is re-linked like the others.
  const conns = [...lm.table.all()];
  for (const c of conns) if (c.edge.kind !== 'tunnel') c.edge.send(encodeLink({ t: 'ping', nonce: lm.random.int(0x7fffffff) }));
  lm.clock.setTimeout(() => {
    for (const c of conns) {
      const cur = lm.table.get(c.address);
      // Alive, or already linked anew; a connection reset meanwhile is re-linked too.
      if ((cur === c && (c.lastHeard > since || c.edge.kind === 'tunnel')) || (cur && cur !== c)) continue;
      if (cur === c) { lm.drop(c, 'silent after our address changed'); c.edge.close('address changed'); }
      // The TA that worked until now first: the peer has not moved, we have.
      const prev = c.edge.kind === 'tunnel' || !dialable(c.edge) ? [] : [c.edge.remoteTA];
      if (c.structured) void lm.connect({ address: c.address, tas: [...prev, ...c.peerTAs] }, c.type);
    }
  }, waitMs);
}
