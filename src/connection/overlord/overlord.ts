// What the ConnectionOverlords need from the layers above them: sending a ConnectTo
// request through the overlay. Injected by the node so this layer never imports routing
// or RPC.
import type { Address } from '../../address/address.js';
import { RING } from '../../address/address.js';
import type { Connection } from '../connection.js';
import type { NodeInfo } from '../node-info.js';
import type { ConnectionTable } from '../table.js';

export interface Connector {
  /**
   * Routes a ConnectTo request toward `dest` (greedy: the closest node; closest: both
   * nodes bracketing dest), optionally through `via` first. Responders link to us; the
   * promise resolves with their NodeInfos (and neighbours they suggest).
   */
  connectTo(dest: Address, mode: 'greedy' | 'closest', type: string, via?: Connection): Promise<NodeInfo[]>;
}

export interface Overlord {
  /** Called on the node heartbeat and on connection-table changes (debounced). */
  activate(now: number): void;
}

/**
 * Network size from the spacing of our nearest structured neighbours (Brunet's estimate):
 * with k neighbours per side spanning a ring arc, N ≈ 2k · 2^160 / arc.
 */
export function estimateSize(table: ConnectionTable): number {
  const s = table.structured.length;
  const { left, right } = table.neighborsOf(table.self, 2);
  // Only distinct neighbours count: with few connections the two sides wrap onto each other.
  const k = Math.min(left.length, right.length, Math.floor(s / 2));
  if (k === 0) return s + 1;
  const arc = table.self.leftDistanceTo(left[k - 1]!.address) + table.self.rightDistanceTo(right[k - 1]!.address);
  if (arc === 0n) return s + 1;
  const est = Number((RING * BigInt(2 * k) * 1024n) / arc) / 1024;
  return Math.max(s + 1, Math.round(est));
}
