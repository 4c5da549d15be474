// `socialvpn run`'s part after the join (groupvpn-run.ts does the rest): load the user key,
// certify this device's node, put .1 of the Subnet on the TAP, start the data path with the
// friend list (watched) and the address book, and answer .svpn names on the TAP address.
import { join } from 'node:path';
import { DEFAULT_ON_DEMAND, type IpopConfig } from '../config/ipop-config.js';
import { ConfigError, loadNodeConfig } from '../config/node-config.js';
import type { Address } from '../address/address.js';
import { ipToString, parseIp } from '../vpn/frames.js';
import { ADDRESS_BOOK_FILE, AddressBook } from '../vpn/social/address-book.js';
import { decodeDeviceCert, issueDeviceCert, needsRenewal, verifyDeviceCert, type DeviceCert } from '../vpn/social/device-cert.js';
import { DnsServer } from '../vpn/social/dns-responder.js';
import type { CertCheck } from '../vpn/social/friend-devices.js';
import { FriendWatcher } from '../vpn/social/friend-watcher.js';
import { friendsFileIn } from '../vpn/social/friends.js';
import { SvpnNameTable } from '../vpn/social/names.js';
import { SocialNode } from '../vpn/social/social-node.js';
import { socialStateView } from '../vpn/social/state.js';
import { UserKey } from '../vpn/social/user-key.js';
import type { Loaded } from './groupvpn-run.js';
import { stateDirFor } from './state-dir.js';
import type { ModeContext, RunningVpn } from './vpn-modes.js';

/** How often the device certificate's age is checked (renewed at half its lifetime). */
const RENEW_CHECK_MS = 60 * 60 * 1000;

/** socialvpn's config: the NodeConfig with its <SocialVpnConfig>, as the shared VPN runner reads it. */
export function loadSocialConfig(config: string, _ipopFile: string | undefined, stateDir: string | undefined): Loaded {
  const cfg = loadNodeConfig(config);
  const social = cfg.socialVpn;
  if (!social) throw new ConfigError('SocialVpnConfig', `${config} has no <SocialVpnConfig> section (see config/socialvpn.config.xml)`);
  if (!cfg.security.enabled) throw new ConfigError('Security/Enabled', 'SocialVPN needs security on: friends are told apart by their keys');
  const ipop: IpopConfig = {
    namespace: cfg.namespace, mode: 'social', device: social.device, macAgeSeconds: 0, leaseTime: 0, mtu: 0,
    // Friends' devices are linked right away and kept.
    onDemand: { ...DEFAULT_ON_DEMAND, enabled: false }, getStatePort: social.getStatePort, multicast: false, offload: social.offload, fastPath: true, nativeFlows: false,
    ipv6Prefix: '', networkIgnoreList: [], ignored: [],
  };
  return { cfg, ipop, social, stateDir: stateDirFor(config, stateDir) };
}

/** A device certificate as the data path checks it: well formed, signed by the user it names, current. */
export const checkDeviceCert: CertCheck = (bytes, nowMs) => {
  let c: DeviceCert;
  try { c = decodeDeviceCert(bytes); } catch (e) { return (e as Error).message; }
  const v = verifyDeviceCert(c, nowMs);
  if (!v.ok) return v.reason;
  return { userKey: c.userPublicKey, userName: c.userName, deviceName: c.deviceName, node: c.nodeAddress, expiresAt: c.expiresAt * 1000 };
};

export async function startSocialMode(c: ModeContext, loaded: Loaded): Promise<RunningVpn> {
  const { node, dht, tap, mtu, log, stateDir } = c;
  const s = loaded.social!;
  const user = UserKey.load(s.userKeyFile);
  const book = AddressBook.load(join(stateDir, ADDRESS_BOOK_FILE), `${s.subnet.network}/${s.subnet.prefix}`, log);
  const ip = (parseIp(s.subnet.network) + 1) >>> 0;
  const watcher = new FriendWatcher(friendsFileIn(stateDir), node.clock, (l) => log.info(`friend list: ${l.list().length} friend(s)`), 1000,
    (e) => log.warn(e.message));
  let cert = issueDeviceCert(user, s.deviceName, node.address, node.clock.now());
  let listedFrom = watcher.list;
  let listed = listedFrom.list().map((f) => ({ key: f.publicKey, alias: f.alias }));
  tap.setIPv4(ipToString(ip), s.subnet.prefix);
  tap.up();
  const vpn = new SocialNode({
    node, dht: dht.dht, registrations: dht.registrations, device: tap, userKey: user.publicKey, ip, prefix: s.subnet.prefix,
    check: checkDeviceCert,
    friends: () => {
      if (watcher.list !== listedFrom) { listedFrom = watcher.list; listed = listedFrom.list().map((f) => ({ key: f.publicKey, alias: f.alias })); }
      return listed;
    },
    ownCert: () => cert.bytes,
    localIpFor: (n: Address, label: string) => book.ipFor(n.key, label),
    nodeAt: (x) => book.lookup(x),
  });
  await vpn.start();
  const renew = node.clock.setInterval(() => {
    if (!needsRenewal(cert, node.clock.now())) return;
    cert = issueDeviceCert(user, s.deviceName, node.address, node.clock.now());
    log.info(`device certificate renewed until ${new Date(cert.expiresAt * 1000).toISOString()}`);
    void vpn.republish();
  }, RENEW_CHECK_MS);
  let dns: DnsServer | undefined;
  if (s.dnsEnabled) {
    const names = new SvpnNameTable(vpn.devices);
    const net = parseIp(s.subnet.network), mask = (~0 << (32 - s.subnet.prefix)) >>> 0;
    dns = new DnsServer();
    // Names are a convenience: a port 53 already taken (a DNS server bound to every address)
    // costs the names, not the VPN.
    await dns.start(ipToString(ip), 53, {
      lookupA: (n) => names.lookupA(n), lookupPtr: (x) => names.lookupPtr(x), servesPtr: (x) => ((x & mask) >>> 0) === net,
    }, log).catch((e: Error) => {
      log.warn(`.svpn names off: ${e.message} (SocialVpnConfig/DnsEnabled false silences this)`);
      dns = undefined;
    });
  }
  node.beforeLeave.push(async () => { vpn.discovery.withdraw(); });
  const self = { user: user.name, device: s.deviceName };
  return {
    view: socialStateView(vpn, self), stats: vpn.stats,
    stop: () => { renew.cancel(); watcher.stop(); void dns?.stop(); vpn.stop(); },
    summary: `${ipToString(ip)}/${s.subnet.prefix} on ${tap.name} (mtu ${mtu}), user ${user.name}, device ${s.deviceName}`,
  };
}
