// The link layer on its own: built from a LinkComponents object (no Node), it reports what
// peers send through its typed events, to every listener.
import t from 'tap';
import { Address } from '../src/address/address.js';
import { LinkManager } from '../src/connection/link-manager.js';
import { PTYPE_RELAY, PTYPE_ROUTED } from '../src/connection/link-wire.js';
import type { NodeInfo } from '../src/connection/node-info.js';
import { ConnectionTable } from '../src/connection/table.js';
import { silentLogger } from '../src/util/log.js';
import { seededRandom } from '../src/util/random.js';
import { VirtualLab } from './helpers/virtual.js';

function linkLayer(lab: VirtualLab, seed: number, neighbors: NodeInfo[]) {
  const random = seededRandom(seed);
  const self = Address.random(random);
  const listener = lab.listener();
  const table = new ConnectionTable(self, () => lab.clock.now());
  const link = new LinkManager({
    self, realm: 'events', table, listeners: [listener], localInfo: () => ({ address: self, tas: listener.localTAs() }),
    neighborsFor: () => neighbors, clock: lab.clock, random, log: silentLogger,
  });
  return { self, listener, table, link };
}

t.test('a LinkManager built from components reports peers through its events', async (t) => {
  const lab = new VirtualLab({ seed: 71 });
  const x: NodeInfo = { address: Address.random(seededRandom(9)), tas: [] };
  const a = linkLayer(lab, 1, [x]), b = linkLayer(lab, 2, []);
  for (const n of [a, b]) { await n.listener.start(); n.link.start(); }
  t.teardown(async () => { for (const n of [a, b]) { n.link.stop(); await n.listener.stop(); } await lab.stop(); });

  const heard: string[] = [];
  b.link.events.on('neighbors', (from, list, reason) => heard.push(`${reason} from ${from?.address.key === a.self.key ? 'a' : '?'}: ${list.map((i) => i.address.key === x.address.key ? 'x' : '?').join(',')}`));
  const c = await b.link.connect({ address: a.self, tas: a.listener.localTAs() }, 'structured.near');
  t.ok(c && a.table.get(b.self), 'linked both ways');
  t.same(heard, ['reply from a: x'], "a's reply carried its neighbour list (from its neighborsFor component)");

  // Two listeners on one event both hear it: nobody replaces another's handler.
  const routed: number[][] = [], routed2: string[] = [], relayed: number[][] = [];
  b.link.events.on('routed', (p) => routed.push([...p]));
  b.link.events.on('routed', (_p, from) => routed2.push(from.address.key));
  b.link.events.on('relay', (p) => relayed.push([...p]));
  const toB = a.table.get(b.self)!;
  toB.edge.send(new Uint8Array([PTYPE_ROUTED, 7]));
  toB.edge.send(new Uint8Array([PTYPE_RELAY, 8]));
  t.ok(await lab.waitFor(() => routed.length === 1 && relayed.length === 1, 2000), 'routed and relay packets reported');
  t.same(routed, [[PTYPE_ROUTED, 7]], 'the routed packet, whole');
  t.same(routed2, [a.self.key], 'the second listener heard it too, with the connection it came over');
  t.same(relayed, [[PTYPE_RELAY, 8]], 'the relay frame, whole');

  a.link.close(toB, 'test over');
  t.ok(await lab.waitFor(() => heard.length === 2, 2000), 'the close was reported');
  t.same(heard[1], 'close from a: x', 'with the closing side\'s neighbours as replacements');
  t.notOk(b.table.get(a.self), 'and the connection is gone');
});
