// The web view's local panel: what this process's first node holds and does — its
// connections, DHT entries and registrations, secure sessions, NAT views, relay use — and,
// when a VPN runs on it, the VPN's status (peers direct, relayed or routed, with RTT).
import type { DhtService } from '../../dht/service.js';
import type { Node } from '../../node/node.js';
import { connections, information } from '../../node/info.js';
import type { Value } from '../../wire/value.js';
import type { Counters } from './history.js';

/** A running VPN's status, as `groupvpn status` shows it (the VPN layer is above this one). */
export type VpnStatus = () => Promise<Record<string, unknown>> | undefined;

export interface WebServices {
  /** The nodes' DHT services, in the order of the nodes. */
  dhts?: DhtService[];
  vpn?: VpnStatus;
}

const VPN_STATUS_MS = 5000;

export class LocalPanel {
  private vpnCache?: { at: number; value: Record<string, unknown> | { error: string } };
  private vpnBusy = false;

  constructor(private readonly nodes: Node[], readonly services: WebServices) {}

  /** Process-wide counters for the history: all nodes of this process summed. */
  counters(): Counters {
    let connections = 0, messages = 0, puts = 0, gets = 0;
    for (const n of this.nodes) {
      connections += n.table.size;
      messages += n.router.stats.delivered + n.router.stats.forwarded;
    }
    for (const d of this.services.dhts ?? []) { puts += d.server.stats.puts; gets += d.server.stats.gets; }
    return { connections, messages, puts, gets };
  }

  async panel(): Promise<Record<string, unknown>> {
    const node = this.nodes[0];
    if (!node) return { nodes: 0 };
    const now = node.clock.now();
    const cons = connections(node) as { type: string; kind: string; address: string; via?: string[] }[];
    const byType: Record<string, number> = {}, byKind: Record<string, number> = {};
    for (const c of cons) { byType[c.type] = (byType[c.type] ?? 0) + 1; byKind[c.kind] = (byKind[c.kind] ?? 0) + 1; }
    const mem = process.memoryUsage();
    return {
      address: node.address.key,
      processNodes: this.nodes.length,
      info: information(node),
      tas: node.info().tas.map((t) => t.key),
      connections: { total: cons.length, byType, byKind },
      router: { ...node.router.stats },
      dht: await this.dht(),
      secure: secure(node),
      nat: node.nat.list(now).slice(0, 8).map((v) => ({ ta: v.ta.key, ageS: Math.round(v.ageMs / 1000) })),
      relay: node.tunnel ? {
        edges: node.tunnel.edgeCount, ...pick(node.tunnel.stats, ['relayed', 'relayedBytes', 'capDrops', 'noRoute', 'refused', 'upgrades']),
        relayedConnections: cons.filter((c) => c.kind === 'tunnel').map((c) => ({ address: c.address, via: c.via ?? [] })),
      } : null,
      vpn: this.vpn(now),
      process: { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, uptimeS: Math.round(process.uptime()) },
    };
  }

  private async dht(): Promise<Record<string, unknown> | null> {
    const d = this.services.dhts?.[0];
    if (!d) return null;
    let entries: Value = null;
    try { entries = await this.nodes[0]!.rpc.callLocal('dht.Count', []); } catch { /* store closed */ }
    const regs = d.registrations.list();
    return {
      entries, registrations: regs.length, registrationsOk: regs.filter((r) => r.lastOk != null).length,
      client: { ...d.dht.stats }, server: { ...d.server.stats },
    };
  }

  /** The VPN's status, refreshed in the background at most every few seconds (it pings each peer). */
  private vpn(now: number): Record<string, unknown> | null {
    const source = this.services.vpn;
    if (!source) return null;
    if (!this.vpnBusy && (!this.vpnCache || now - this.vpnCache.at >= VPN_STATUS_MS)) {
      const p = source();
      if (p) {
        this.vpnBusy = true;
        p.then((value) => { this.vpnCache = { at: now, value }; }, (e: Error) => { this.vpnCache = { at: now, value: { error: e.message } }; })
          .finally(() => { this.vpnBusy = false; });
      }
    }
    return this.vpnCache?.value ?? { state: 'starting' };
  }
}

/** Secure-session counters summed over the node's secure listeners (none: security is off). */
function secure(node: Node): Record<string, unknown> | null {
  const out: Record<string, number> = {};
  const failed: Record<string, number> = {};
  let any = false;
  for (const l of node.listeners) {
    const s = (l as { stats?: Record<string, unknown> }).stats;
    if (!s || typeof s.handshakesOk !== 'number') continue;
    any = true;
    for (const [k, v] of Object.entries(s)) {
      if (typeof v === 'number') out[k] = (out[k] ?? 0) + v;
      else if (k === 'handshakesFailed' && v) for (const [r, n] of Object.entries(v as Record<string, number>)) failed[r] = (failed[r] ?? 0) + n;
    }
    const sec = l as Partial<{ securityAssociations: number; pendingHandshakes: number }>;
    out.securityAssociations = (out.securityAssociations ?? 0) + (sec.securityAssociations ?? 0);
    out.pendingHandshakes = (out.pendingHandshakes ?? 0) + (sec.pendingHandshakes ?? 0);
  }
  return any ? { ...out, handshakesFailed: failed } : null;
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((k) => [k, o[k]])) as Pick<T, K>;
}
