// Rings of nodes with the DHT attached (in-memory stores unless a directory is given).
import { DhtService } from '../../src/dht/service.js';
import { TableStore } from '../../src/dht/store.js';
import type { Node } from '../../src/node/node.js';
import { realClock } from '../../src/util/clock.js';
import type { Test } from 'tap';
import type { IpopNode } from '../../src/vpn/group/ipop-node.js';
import { consistency, FAST, startRing, stopAll, waitFor, type Kind } from './ring.js';
import { Identity } from '../../src/edge/identity.js';
import { groupKey } from '../../src/edge/handshake.js';
import { SecureEdgeListener } from '../../src/edge/secure-listener.js';
import { Node as NodeClass } from '../../src/node/node.js';
import type { NodeOptions } from '../../src/node/node.js';
import type { DhtLimits } from '../../src/dht/limits.js';
import { VirtualLab } from './virtual.js';

/** The store runs on the node's clock (a VirtualLab's for lab nodes). */
export async function attachDht(n: Node, dir?: string, limits?: Partial<DhtLimits>): Promise<DhtService> {
  const store = dir ? TableStore.disk(dir, { clock: n.clock }) : TableStore.memory({ clock: n.clock });
  await store.open();
  return new DhtService(n, store, limits);
}

/** kind: a real ring ('memory', 'udp', 'tcp') or a VirtualLab to start the ring in virtual time. */
export async function startDhtRing(n: number, kind: Kind | VirtualLab, opts: Partial<NodeOptions> = {}, limits?: Partial<DhtLimits>): Promise<{ nodes: Node[]; dhts: DhtService[] }> {
  const nodes = kind instanceof VirtualLab ? await kind.startRing(n, opts) : await startRing(n, kind, opts);
  const dhts = await Promise.all(nodes.map((x) => attachDht(x, undefined, limits)));
  return { nodes, dhts };
}

/**
 * A ring on a VirtualLab whose nodes have identities (address = key hash, keys drawn from
 * the lab's seed), so their DHT can sign and verify claims such as the VPN's dhcp: mappings.
 */
export async function startSignedDhtRing(lab: VirtualLab, n: number, namespace: string, o: { secure?: boolean } = {}): Promise<{ nodes: Node[]; dhts: DhtService[] }> {
  const nodes: Node[] = [];
  const dhts: DhtService[] = [];
  const key = o.secure ? groupKey('signed ring', namespace) : undefined;
  for (let i = 0; i < n; i++) {
    const keys = lab.random();
    const id = Identity.fromPrivateKeys(keys.bytes(32), keys.bytes(32));
    const raw = lab.listener();
    // With secure: every edge is a SecureEdge (handshake, AEAD), as in a daemon with security on.
    const listener = key ? new SecureEdgeListener(raw, { identity: id, groupKey: key, namespace, ...lab.env() }) : raw;
    const node = new NodeClass({ ...FAST, ...lab.env(), namespace, address: id.address, listeners: [listener], remoteTAs: nodes[0] ? nodes[0].listeners[0]!.localTAs() : [] });
    await node.start();
    const store = TableStore.memory({ clock: lab.clock });
    await store.open();
    nodes.push(node);
    dhts.push(new DhtService(node, store, {}, id));
  }
  return { nodes, dhts };
}

export interface VpnRing { lab: VirtualLab; nodes: Node[]; dhts: DhtService[]; vpns: Array<{ stop(): void }> }

/**
 * A signed ring for VPN tests in virtual time: started on a lab of its own, torn down with
 * the test (the VPNs pushed onto `vpns` first, the lab last), and asserted consistent
 * before it is returned.
 */
export async function startVpnRing(t: Test, n: number, namespace: string, formed = `ring of ${n} formed`, seed = 1, o: { secure?: boolean } = {}): Promise<VpnRing> {
  const lab = new VirtualLab({ seed });
  const { nodes, dhts } = await startSignedDhtRing(lab, n, namespace, o);
  const vpns: Array<{ stop(): void }> = [];
  t.teardown(async () => {
    for (const v of vpns) v.stop();
    await stopAll(nodes);
    await Promise.all(dhts.map((d) => d.close()));
    await lab.stop();
  });
  t.ok(await lab.waitFor(() => consistency(nodes) === 1, 20_000), formed);
  return { lab, nodes, dhts, vpns };
}
