// Brunet's NodeConfig XML (Node.xsd). Parsed strictly: a typo in a hand-edited config should
// stop the node with one line naming the element, not silently fall back to a default.
import { realpathSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Address } from '../address/address.js';
import { TransportAddress } from '../transport/ta.js';
import { writeFileAtomic } from '../util/secret-file.js';
import { parseDht, type DhtConfig } from './dht-config.js';
import { parseIpop, type IpopConfig } from './ipop-config.js';
import { parseRelay, type RelayConfig } from './relay-config.js';
import { parseSecurity, type SecurityConfig } from './security-config.js';
import { parseSocialVpn, type SocialVpnConfig } from './socialvpn-config.js';
import { ConfigError, children, parseBool, parsePort, rejectUnknown, single, text, type XNode } from './xml-helpers.js';
import { checkWellFormed, parseXml, readXmlFile, XmlSyntaxError } from './xml-wellformed.js';

export { ConfigError } from './xml-helpers.js';

export interface EdgeListenerConfig { type: 'udp' | 'tcp'; port: number } // port 0 = random

export interface NodeConfig {
  source?: string;
  namespace: string;
  edgeListeners: EdgeListenerConfig[];
  remoteTAs: TransportAddress[];
  xmlRpc: { enabled: boolean; port: number };
  nodeAddress?: Address;
  devicesToBind: string[];
  dht: DhtConfig;
  security: SecurityConfig;
  relay: RelayConfig;
  /** The VPN's section (groupvpn); absent for plain overlay nodes. */
  ipop?: IpopConfig;
  /** The SocialVPN's section (socialvpn); absent otherwise. */
  socialVpn?: SocialVpnConfig;
}

/** Known children of <NodeConfig>; sections added by later features register here. */
export const NODE_CONFIG_ELEMENTS: readonly string[] = [
  'BrunetNamespace', 'EdgeListeners', 'RemoteTAs', 'XmlRpcManager', 'NodeAddress', 'DevicesToBind', 'Dht', 'Security', 'IpopConfig', 'Relay', 'SocialVpnConfig',
];

export const DEFAULT_XMLRPC_PORT = 10000;

function parseEdgeListeners(node: XNode): EdgeListenerConfig[] {
  const P = 'EdgeListeners';
  const { kids } = children(node, P);
  rejectUnknown(kids, ['EdgeListener'], P);
  const els = kids['EdgeListener'] ?? [];
  if (els.length === 0) {
    throw new ConfigError(P, 'contains no <EdgeListener> (omit <EdgeListeners> for one UDP listener on a random port)');
  }
  const out: EdgeListenerConfig[] = [];
  const seen = new Set<string>();
  els.forEach((el, i) => {
    const path = `${P}/EdgeListener[${i + 1}]`;
    const { attrs, kids: elKids } = children(el, path, ['type']);
    rejectUnknown(elKids, ['port'], path);
    const type = attrs['type']?.trim();
    if (type === undefined) throw new ConfigError(path, 'missing attribute type="udp|tcp"');
    if (type !== 'udp' && type !== 'tcp') throw new ConfigError(path, `type must be "udp" or "tcp", got ${JSON.stringify(type)}`);
    const portNode = single(elKids, 'port', `${path}/`);
    // Brunet treats a missing port as "pick one at random".
    const port = portNode === undefined ? 0 : parsePort(text(portNode, `${path}/port`) || '0', `${path}/port`, 0);
    const key = `${type}:${port}`;
    if (port !== 0 && seen.has(key)) throw new ConfigError(path, `duplicate ${type} listener on port ${port}`);
    seen.add(key);
    out.push({ type, port });
  });
  return out;
}

function parseRemoteTAs(node: XNode): TransportAddress[] {
  const P = 'RemoteTAs';
  const { kids } = children(node, P);
  rejectUnknown(kids, ['Transport'], P);
  return (kids['Transport'] ?? []).map((t, i) => {
    const path = `${P}/Transport[${i + 1}]`;
    const s = text(t, path);
    let ta: TransportAddress;
    try {
      ta = TransportAddress.parse(s);
    } catch (e) {
      throw new ConfigError(path, (e as Error).message);
    }
    if (ta.kind !== 'udp' && ta.kind !== 'tcp') throw new ConfigError(path, `only udp and tcp bootstrap addresses are supported, got ${JSON.stringify(s)}`);
    return ta;
  });
}

function parseXmlRpc(node: XNode): NodeConfig['xmlRpc'] {
  const P = 'XmlRpcManager';
  const { kids } = children(node, P);
  rejectUnknown(kids, ['Enabled', 'Port'], P);
  const en = single(kids, 'Enabled', `${P}/`);
  const port = single(kids, 'Port', `${P}/`);
  return {
    enabled: en === undefined ? true : parseBool(text(en, `${P}/Enabled`), `${P}/Enabled`),
    port: port === undefined ? DEFAULT_XMLRPC_PORT : parsePort(text(port, `${P}/Port`), `${P}/Port`, 1),
  };
}

function parseDevices(node: XNode): string[] {
  const P = 'DevicesToBind';
  const { kids } = children(node, P);
  rejectUnknown(kids, ['Device'], P);
  return (kids['Device'] ?? []).map((d, i) => {
    const path = `${P}/Device[${i + 1}]`;
    const name = text(d, path);
    if (name === '') throw new ConfigError(path, 'empty device name');
    return name;
  });
}

function parseNodeAddress(node: XNode): Address {
  const s = text(node, 'NodeAddress');
  let a: Address;
  try {
    a = Address.parse(s);
  } catch (e) {
    throw new ConfigError('NodeAddress', `invalid address ${JSON.stringify(s)}: ${(e as Error).message}`);
  }
  if (!a.isClass0) throw new ConfigError('NodeAddress', `${s} is not a class 0 (node) address: its last bit must be 0`);
  return a;
}

export function parseNodeConfig(xml: string, source?: string): NodeConfig {
  const doc = parseXml(xml, source ?? 'NodeConfig');
  const roots = Object.keys(doc);
  if (roots.length === 0) throw new ConfigError('NodeConfig', 'no root element found (is the file empty?)');
  if (roots.length > 1 || (doc[roots[0]!]?.length ?? 0) > 1) throw new ConfigError('NodeConfig', `more than one root element (${roots.join(', ')})`);
  if (roots[0] !== 'NodeConfig') throw new ConfigError('NodeConfig', `root element must be <NodeConfig>, found <${roots[0]}>`);

  const { kids } = children(doc['NodeConfig']![0]!, 'NodeConfig');
  rejectUnknown(kids, NODE_CONFIG_ELEMENTS, 'NodeConfig');
  const one = (name: string): XNode | undefined => single(kids, name, '');

  const nsNode = one('BrunetNamespace');
  if (nsNode === undefined) throw new ConfigError('BrunetNamespace', 'missing (required: the realm this node joins)');
  const namespace = text(nsNode, 'BrunetNamespace');
  if (namespace === '') throw new ConfigError('BrunetNamespace', 'must not be empty');

  const elNode = one('EdgeListeners');
  const taNode = one('RemoteTAs');
  const rpcNode = one('XmlRpcManager');
  const addrNode = one('NodeAddress');
  const devNode = one('DevicesToBind');
  const cfg: NodeConfig = {
    namespace,
    edgeListeners: elNode === undefined ? [{ type: 'udp', port: 0 }] : parseEdgeListeners(elNode),
    remoteTAs: taNode === undefined ? [] : parseRemoteTAs(taNode),
    xmlRpc: rpcNode === undefined ? { enabled: true, port: DEFAULT_XMLRPC_PORT } : parseXmlRpc(rpcNode),
    devicesToBind: devNode === undefined ? [] : parseDevices(devNode),
    dht: parseDht(one('Dht')),
    security: parseSecurity(one('Security')),
    relay: parseRelay(one('Relay')),
  };
  if (addrNode !== undefined) cfg.nodeAddress = parseNodeAddress(addrNode);
  const ipopNode = one('IpopConfig');
  if (ipopNode !== undefined) cfg.ipop = parseIpop(ipopNode);
  const svNode = one('SocialVpnConfig');
  if (svNode !== undefined) cfg.socialVpn = parseSocialVpn(svNode, source === undefined ? undefined : dirname(resolve(source)));
  if (source !== undefined) cfg.source = source;
  return cfg;
}

export function loadNodeConfig(path: string): NodeConfig {
  const xml = readXmlFile(path);
  try {
    return parseNodeConfig(xml, path);
  } catch (e) {
    if (e instanceof ConfigError && !(e instanceof XmlSyntaxError)) throw new ConfigError(e.element, `${e.reason} (in ${path})`);
    throw e;
  }
}

/** [start, end) ranges of comments and CDATA, where tag-looking text must not be edited. */
function opaqueRanges(s: string): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const re = /<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>/g;
  for (let m; (m = re.exec(s)); ) out.push([m.index, m.index + m[0].length]);
  return out;
}

function firstOutside(s: string, re: RegExp, ranges: Array<[number, number]>, last = false): RegExpExecArray | undefined {
  const g = new RegExp(re.source, 'g');
  let found: RegExpExecArray | undefined;
  for (let m; (m = g.exec(s)); ) {
    const i = m.index;
    const inside = ranges.find(([a, b]) => i >= a && i < b);
    // A match starting in a comment may run past it; resume the search after the comment.
    if (inside) { g.lastIndex = inside[1]; continue; }
    found = m;
    if (!last) break;
  }
  return found;
}

/** The file text with <NodeAddress> set to `addr`, everything else byte-for-byte unchanged. */
function withNodeAddress(s: string, addr: string): string {
  const ranges = opaqueRanges(s);
  const elem = `<NodeAddress>${addr}</NodeAddress>`;
  const existing = firstOutside(s, /<NodeAddress(\s[^>/]*)?(\/>|>[\s\S]*?<\/NodeAddress\s*>)/, ranges);
  if (existing) return s.slice(0, existing.index) + elem + s.slice(existing.index + existing[0].length);

  const close = firstOutside(s, /<\/NodeConfig\s*>/, ranges, true);
  if (!close) throw new ConfigError('NodeConfig', 'no closing </NodeConfig> tag to insert <NodeAddress> before');
  const eol = s.includes('\r\n') ? '\r\n' : '\n';
  const lineStart = s.lastIndexOf('\n', close.index - 1) + 1;
  const before = s.slice(lineStart, close.index);
  // Indent like the first child element, so the inserted line blends in.
  const childIndent = /\n([ \t]+)<[A-Za-z]/.exec(s.slice(0, close.index))?.[1] ?? '  ';
  if (/^[ \t]*$/.test(before)) return s.slice(0, lineStart) + childIndent + elem + eol + s.slice(lineStart);
  return s.slice(0, close.index) + eol + childIndent + elem + eol + s.slice(close.index);
}

export function writeNodeAddress(path: string, address: Address): void {
  if (!address.isClass0) throw new ConfigError('NodeAddress', `${address.key} is not a class 0 (node) address`);
  let real: string;
  try {
    real = realpathSync(path); // write through a symlink instead of replacing it
  } catch {
    readXmlFile(path); // produces the standard "cannot read" error
    throw new ConfigError('file', `cannot resolve ${path}`);
  }
  const before = readXmlFile(real);
  checkWellFormed(before.replace(/^\uFEFF/, ''), path); // positions in the file, not in the edited text
  const after = withNodeAddress(before, address.key);
  // Never write something we would refuse to load.
  const check = parseNodeConfig(after, path);
  if (!check.nodeAddress?.equals(address)) throw new ConfigError('NodeAddress', `could not update the element in ${path}`);
  if (after === before) return;

  try {
    writeFileAtomic(real, after, statSync(real).mode & 0o7777);
  } catch (e) {
    throw new ConfigError('file', `cannot write ${path}: ${(e as Error).message}`);
  }
}
