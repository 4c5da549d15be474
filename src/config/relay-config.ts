// The optional <Relay> section of NodeConfig: relay (tunnel) edges through common
// neighbours, for peers that cannot reach each other directly (symmetric NATs, firewalls).
// On by default, as Brunet always added its TunnelEdgeListener.
import { children, int, parseBool, rejectUnknown, single, text, type XNode } from './xml-helpers.js';

export interface RelayConfig {
  enabled: boolean;
  /** Bytes per second this node forwards for any one neighbour (the per-source cap). */
  maxBytesPerSecond: number;
  /** Forwarders listed in this node's relay TA. */
  forwarders: number;
  /** Seconds between attempts to replace a relay edge with a direct one. */
  upgradeInterval: number;
}

export const DEFAULT_RELAY_CONFIG: RelayConfig = { enabled: true, maxBytesPerSecond: 10_000_000, forwarders: 4, upgradeInterval: 30 };

export function parseRelay(node: XNode | undefined): RelayConfig {
  const cfg = { ...DEFAULT_RELAY_CONFIG };
  if (node === undefined) return cfg;
  const P = 'Relay';
  const { kids } = children(node, P);
  rejectUnknown(kids, ['Enabled', 'MaxBytesPerSecond', 'Forwarders', 'UpgradeInterval'], P);
  const get = (name: string) => single(kids, name, `${P}/`);
  const en = get('Enabled');
  if (en !== undefined) cfg.enabled = parseBool(text(en, `${P}/Enabled`), `${P}/Enabled`);
  const mb = get('MaxBytesPerSecond');
  if (mb !== undefined) cfg.maxBytesPerSecond = int(mb, `${P}/MaxBytesPerSecond`, 1000, 10_000_000_000);
  const fw = get('Forwarders');
  if (fw !== undefined) cfg.forwarders = int(fw, `${P}/Forwarders`, 1, 8);
  const up = get('UpgradeInterval');
  if (up !== undefined) cfg.upgradeInterval = int(up, `${P}/UpgradeInterval`, 0, 86400);
  return cfg;
}
