// What the link layer (link-manager.ts) needs from its node, and what it reports to it:
// the node passes one LinkComponents object and wires listeners to the LinkEvents in one
// place (Node.wire in node/node.ts).
import type { Address } from '../address/address.js';
import type { EdgeListener } from '../transport/edge.js';
import type { TransportAddress } from '../transport/ta.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import type { RandomSource } from '../util/random.js';
import type { Connection } from './connection.js';
import type { NodeInfo } from './node-info.js';
import type { ConnectionTable } from './table.js';

/** What the link layer needs from its node: exactly this, nothing more. */
export interface LinkComponents {
  self: Address;
  /** The namespace: peers in another one are refused. */
  realm: string;
  table: ConnectionTable;
  listeners: EdgeListener[];
  /** Our NodeInfo as we advertise it now. */
  localInfo: () => NodeInfo;
  /** The Status we send a peer: our nearest connections to it (the near overlord's report). */
  neighborsFor: (peer: Address) => NodeInfo[];
  clock: Clock;
  random: RandomSource;
  log: Logger;
}

/** What the link layer reports; the node wires listeners to these in one place (node.ts). */
export type LinkEvents = {
  /** A routed packet from a linked peer (for the router). */
  routed: [packet: Uint8Array, from: Connection];
  /** A relay frame from a linked peer (for the tunnel listener, if any). */
  relay: [packet: Uint8Array, from: Connection];
  /** A peer sent its neighbour list (Status, reply or close). */
  neighbors: [from: Connection | null, neighbors: NodeInfo[], reason: 'status' | 'reply' | 'close'];
  /** A peer on a relay connection asks us to open our NAT towards it (dial false) or to dial it (dial true). */
  punch: [from: Connection, dial: boolean];
  /** A linked peer announced new TAs (a NAT mapping learnt, an address change). */
  peerTAs: [c: Connection];
  /** A peer (`from`, the address it proved on a secure edge) told us under which UDP TA it sees us (our NAT mapping, if any). */
  observedTA: [ta: TransportAddress, from: Address];
  /** A live peer reset our edge: it restarted, or our public address changed under us. */
  peerReset: [];
  /** Our advertised TAs changed and peers were told (a relayed peer may be reachable now). */
  announced: [];
};
