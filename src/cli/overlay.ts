// Builds and starts the nodes a NodeConfig describes (Brunet's MultiNode when count > 1):
// the first node gets the configured ports and address, the others free ports and fresh
// addresses; all share the process and one control API port, nothing else.
import { Address } from '../address/address.js';
import type { NodeConfig } from '../config/node-config.js';
import { ConfigError, writeNodeAddress } from '../config/node-config.js';
import { OverlayMetrics } from '../control/metrics.js';
import { ControlServer } from '../control/server.js';
import { Identity } from '../edge/index.js';
import { securityContext, secureListener } from './security.js';
import { DhtService } from '../dht/service.js';
import { TableStore } from '../dht/store.js';
import { Node, type NodeOptions } from '../node/node.js';
import { warnUnusableRemoteTas } from '../node/remote-tas.js';
import type { EdgeListener } from '../transport/edge.js';
import { TcpEdgeListener } from '../transport/tcp.js';
import { UdpEdgeListener } from '../transport/udp.js';
import { fastPathFromEnv } from '../transport/udp-socket.js';
import { realClock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { cryptoRandom } from '../util/random.js';
import { dirname, resolve } from 'node:path';

export interface OverlayOptions {
  count: number;
  /** Local address to bind listeners to (default all interfaces). */
  bind?: string;
  log: Logger;
  /**
   * Persist a generated first-node address into the config file once every node is up
   * (default true). false: the caller does it with saveNodeAddress when it is ready.
   */
  writeAddress?: boolean;
  nodeOptions?: Partial<NodeOptions>;
  /** Interfaces whose addresses are never advertised (the VPN's TAP and its ignore list). */
  ignoreDevices?: string[];
  /** IpopConfig/FastPath, passed to the listeners (batched UDP I/O); default BRUNET_FASTPATH=1|0, else true. */
  fastPath?: boolean;
}

export interface Overlay {
  nodes: Node[];
  dhts: DhtService[];
  server?: ControlServer;
  stop(): Promise<void>;
}

function listeners(cfg: NodeConfig, first: boolean, bind: string | undefined, ignore: string[], fastPath: boolean): EdgeListener[] {
  return cfg.edgeListeners.map((el) => {
    const o = { port: first ? el.port : 0, host: bind, devices: cfg.devicesToBind, ignore, fastPath, clock: realClock, random: cryptoRandom };
    return el.type === 'udp' ? new UdpEdgeListener(o) : new TcpEdgeListener(o);
  });
}

export async function startOverlay(cfg: NodeConfig, o: OverlayOptions): Promise<Overlay> {
  const sec = securityContext(cfg, o.log);
  // Only the first node has a member certificate; extra nodes would all be refused.
  if (sec?.membership && o.count > 1) { sec.stop(); throw new ConfigError('Security/CACertificate', 'with a group CA each node needs its own certificate: run one node per config (no --nodes)'); }
  // With security on, the address is derived from the node's key, so nobody can claim it.
  const first = sec ? sec.firstIdentity.address : cfg.nodeAddress ?? Address.random(cryptoRandom);
  const nodes: Node[] = [];
  const dhts: DhtService[] = [];
  const overlay: Overlay = {
    nodes,
    dhts,
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
      await overlay.server?.stop();
      await Promise.all(dhts.map((d) => d.close().catch(() => {})));
      sec?.stop();
    },
  };
  const dataDir = dhtDirectory(cfg);
  void warnUnusableRemoteTas(cfg.remoteTAs, o.log);
  try {
    for (let i = 0; i < o.count; i++) {
      const identity = sec ? (i === 0 ? sec.firstIdentity : Identity.generate()) : undefined;
      const raw = listeners(cfg, i === 0, o.bind, o.ignoreDevices ?? [], o.fastPath ?? fastPathFromEnv() ?? true);
      const node = new Node({
        namespace: cfg.namespace,
        address: identity ? identity.address : i === 0 ? first : undefined,
        listeners: sec && identity ? raw.map((l) => secureListener(l, identity, sec, cfg, o.log)) : raw,
        tunnel: cfg.relay.enabled && { maxRelayBytesPerSec: cfg.relay.maxBytesPerSecond, advertisedForwarders: cfg.relay.forwarders, upgradeMs: cfg.relay.upgradeInterval * 1000 },
        // Relay edges are end-to-end secured like direct ones (the forwarder sees ciphertext).
        wrapTunnel: sec && identity ? (l) => secureListener(l, identity, sec, cfg, o.log) : undefined,
        remoteTAs: cfg.remoteTAs,
        log: o.log,
        type: o.count > 1 ? 'MultiNode' : 'BasicNode',
        ...o.nodeOptions,
      });
      nodes.push(node);
      // The first node keeps its DHT entries on disk; extra nodes of a MultiNode in memory.
      const store = i === 0 && dataDir ? TableStore.disk(dataDir, { clock: realClock }) : TableStore.memory({ clock: realClock });
      await store.open();
      dhts.push(new DhtService(node, store, { degree: cfg.dht.degree, maxValueBytes: cfg.dht.maxValueBytes, maxTtl: cfg.dht.maxTtl, repairMs: cfg.dht.repairInterval * 1000 }, identity));
      await node.start();
    }
    if (cfg.xmlRpc.enabled) {
      overlay.server = new ControlServer(nodes, cfg.xmlRpc.port, undefined, { dhts });
      overlay.server.metrics = new OverlayMetrics(nodes, dhts);
      await overlay.server.start();
    }
    // Only now: a start that failed leaves the config file as it was.
    if (o.writeAddress !== false) saveNodeAddress(cfg, first, o.log);
  } catch (e) {
    await overlay.stop();
    throw e;
  }
  return overlay;
}

/** Writes the first node's address into the config file if it is not there yet. */
export function saveNodeAddress(cfg: NodeConfig, address: Address, log: Logger): void {
  if (cfg.nodeAddress?.equals(address) || !cfg.source) return;
  if (cfg.nodeAddress) log.warn(`NodeAddress ${cfg.nodeAddress.key} does not match this node's key; replaced by ${address.key}`);
  writeNodeAddress(cfg.source, address);
  log.info(`node address ${address.key} saved in ${cfg.source}`);
}

/** Where the first node's DHT store lives: configured, or `<config file>.data/dht`. */
function dhtDirectory(cfg: NodeConfig): string | undefined {
  const d = cfg.dht.dataDirectory;
  if (d === 'memory') return undefined;
  if (d) return resolve(cfg.source ? dirname(cfg.source) : '.', d);
  return cfg.source ? `${resolve(cfg.source)}.data/dht` : undefined;
}
