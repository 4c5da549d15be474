// The N-node process bench:web and bench/web-crawl.ts measure: nodes with their DHTs on loopback
// UDP (or in-process delivery), started one after another from the first, until the ring is
// consistent (at most FORM_LIMIT_MS).
import { DhtService } from '../src/dht/service.js';
import { TableStore } from '../src/dht/store.js';
import { Node } from '../src/node/node.js';
import { MemoryNetwork } from '../src/transport/memory.js';
import { UdpEdgeListener } from '../src/transport/udp.js';
import { realClock } from '../src/util/clock.js';
import { cryptoRandom } from '../src/util/random.js';
import { consistent } from './ring-check.js';

const FORM_LIMIT_MS = 600_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface WebRing { nodes: Node[]; dhts: DhtService[]; formedS: number }

export async function startWebRing(n: number, transport: string, progress: (s: string) => void): Promise<WebRing> {
  if (transport !== 'udp' && transport !== 'memory') throw new Error(`BENCH_WEB_TRANSPORT must be udp or memory, got ${transport}`);
  const nodes: Node[] = [], dhts: DhtService[] = [];
  const net = new MemoryNetwork();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const l = transport === 'memory' ? net.listener() : new UdpEdgeListener({ port: 0, host: '127.0.0.1', clock: realClock, random: cryptoRandom });
    const node = new Node({ namespace: 'bench', listeners: [l], remoteTAs: i === 0 ? [] : nodes[0]!.info().tas, type: 'MultiNode' });
    const store = TableStore.memory({ clock: realClock });
    await store.open();
    dhts.push(new DhtService(node, store));
    await node.start();
    nodes.push(node);
    if (i % 50 === 0) progress(`starting nodes: ${i + 1}/${n}`);
  }
  while (!consistent(nodes) && performance.now() - t0 < FORM_LIMIT_MS) { progress(`forming the ring (${((performance.now() - t0) / 1000).toFixed(0)} s)`); await sleep(500); }
  if (!consistent(nodes)) throw new Error(`no consistent ring of ${n} within ${FORM_LIMIT_MS / 1000} s (a loaded machine? try BENCH_WEB_TRANSPORT=memory)`);
  return { nodes, dhts, formedS: (performance.now() - t0) / 1000 };
}
