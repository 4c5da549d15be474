// Rings of nodes with the DHT attached (in-memory stores unless a directory is given).
import { DhtService } from '../../src/dht/service.js';
import { TableStore } from '../../src/dht/store.js';
import type { Node } from '../../src/node/node.js';
import { realClock } from '../../src/util/clock.js';
import { startRing, type Kind } from './ring.js';
import type { NodeOptions } from '../../src/node/node.js';
import type { DhtLimits } from '../../src/dht/limits.js';

export async function attachDht(n: Node, dir?: string, limits?: Partial<DhtLimits>): Promise<DhtService> {
  const store = dir ? TableStore.disk(dir, { clock: realClock }) : TableStore.memory({ clock: realClock });
  await store.open();
  return new DhtService(n, store, limits);
}

export async function startDhtRing(n: number, kind: Kind, opts: Partial<NodeOptions> = {}, limits?: Partial<DhtLimits>): Promise<{ nodes: Node[]; dhts: DhtService[] }> {
  const nodes = await startRing(n, kind, opts);
  const dhts = await Promise.all(nodes.map((x) => attachDht(x, undefined, limits)));
  return { nodes, dhts };
}
