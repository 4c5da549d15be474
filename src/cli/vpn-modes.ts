// Starting the VPN in its mode, once the node has joined the ring (groupvpn-run.ts):
//   router: claim or lease the IP, put it on the TAP (and IPv6 beside it), route IP packets;
//   switch: put a static address (if any) on the Bridge or the TAP, join the Bridge, switch
//           Ethernet frames.
import type { IpopConfig } from '../config/ipop-config.js';
import type { DhtService } from '../dht/service.js';
import type { Node } from '../node/node.js';
import type { Logger } from '../util/log.js';
import { cryptoRandom } from '../util/random.js';
import { attachToBridge, bridgeMtuWarnings } from '../vpn/bridge.js';
import { DhcpServer } from '../vpn/dhcp-server.js';
import type { FramePathStats } from '../vpn/frame-path.js';
import { ipToString } from '../vpn/frames.js';
import type { VpnStateView } from '../vpn/get-state.js';
import { IpopNode } from '../vpn/group/ipop-node.js';
import { routerStateView } from '../vpn/group/state.js';
import { ipv6PrefixFor, ipv6ToString, mappedIpv6 } from '../vpn/ipv6.js';
import { acquireLease } from '../vpn/lease.js';
import { releaseAddress } from '../vpn/mapping.js';
import { switchStateView } from '../vpn/switch/state.js';
import { SwitchNode } from '../vpn/switch/switch-node.js';
import { NativePath } from '../vpn/native-path.js';
import { nativeLinks, type TapDevice } from '../vpn/tap.js';
import { realClock } from '../util/clock.js';

export interface ModeContext {
  node: Node;
  dht: DhtService;
  ipop: IpopConfig;
  tap: TapDevice;
  mtu: number;
  leaseFile: string;
  stateDir: string;
  log: Logger;
}

/** A VPN running in its mode: what get_state, status and stop use. */
export interface RunningVpn {
  view: VpnStateView;
  stats: FramePathStats & { rxFrames: number; rxBytes: number };
  stop(): void;
  /** The ready line's description: addresses, device, mode. */
  summary: string;
  /** IpopConfig/NativeFlows: the native path's counters (status --json nativeFlows). */
  native?: () => Record<string, number>;
}

export async function startRouterMode(c: ModeContext): Promise<RunningVpn> {
  const { node, dht, ipop, tap, mtu, log } = c;
  const lease = await acquireLease({
    dht: dht.dht, registrations: dht.registrations, self: node.address, cfg: ipop, random: cryptoRandom, log, leaseFile: c.leaseFile,
  });
  tap.setIPv4(ipToString(lease.ip), lease.prefix);
  tap.up();
  const ipv6 = configureIpv6(tap, ipop.ipv6Prefix, ipop.namespace, lease.ip, mtu, log);
  const vpn = new IpopNode({
    node, dht: dht.dht, registrations: dht.registrations, device: tap, namespace: ipop.namespace, ip: lease.ip, prefix: lease.prefix,
    onDemand: ipop.onDemand, multicast: ipop.multicast, ipv6Prefix: ipv6?.prefix,
  });
  if (lease.range) {
    const leased = lease.ip;
    const server = new DhcpServer({ range: lease.range, serverMac: vpn.gatewayMac, mtu, leaseTime: lease.leaseTime, log, lease: async () => leased });
    vpn.setDhcp(server);
  }
  await vpn.start();
  let native: NativePath | undefined;
  if (ipop.nativeFlows) {
    try {
      native = NativePath.start({ vpn, tap, listeners: node.listeners, clock: realClock, log, ttl: () => node.router.defaultTtl() });
    } catch (e) { vpn.stop(); throw new Error(`IpopConfig/NativeFlows: ${(e as Error).message}`); }
  }
  node.beforeLeave.push(async () => { releaseAddress(dht.registrations, ipop.namespace, vpn.ip, node.address); await vpn.leave(); });
  return {
    view: routerStateView(vpn), stats: vpn.stats, stop: () => { native?.stop(); vpn.stop(); },
    ...(native ? { native: () => native!.summary() } : {}),
    summary: `${ipToString(lease.ip)}/${lease.prefix}${ipv6 ? ` and ${ipv6.text}/64` : ''} on ${tap.name} (mtu ${mtu})`,
  };
}

/**
 * Switch mode: the hosts behind the bridge hold the IPs. A static AddressData is claimed like
 * router mode's and put on the Bridge (or, without one, the TAP); without it nothing is leased.
 */
export async function startSwitchMode(c: ModeContext): Promise<RunningVpn> {
  const { node, dht, ipop, tap, mtu, log } = c;
  let address = '';
  if (ipop.address && ipop.addressDevice) {
    const lease = await acquireLease({ dht: dht.dht, registrations: dht.registrations, self: node.address, cfg: ipop, random: cryptoRandom, log });
    address = `${ipToString(lease.ip)}/${lease.prefix}`;
    if (ipop.addressDevice === tap.name) tap.setIPv4(ipToString(lease.ip), lease.prefix);
    else nativeLinks().setIPv4(ipop.addressDevice, ipToString(lease.ip), lease.prefix);
    node.beforeLeave.push(async () => { releaseAddress(dht.registrations, ipop.namespace, lease.ip, node.address); });
  }
  tap.up();
  if (ipop.bridge) {
    attachToBridge(ipop.bridge, tap.name);
    for (const w of bridgeMtuWarnings(ipop.bridge, tap.name, mtu)) log.warn(w);
    log.info(`${tap.name} joined bridge ${ipop.bridge}`);
  }
  const vpn = new SwitchNode({
    node, dht: dht.dht, registrations: dht.registrations, device: tap, namespace: ipop.namespace, onDemand: ipop.onDemand,
    macAgeMs: ipop.macAgeSeconds * 1000,
  });
  await vpn.start();
  node.beforeLeave.push(() => vpn.leave());
  const where = ipop.bridge ? `${tap.name} in bridge ${ipop.bridge}` : tap.name;
  return {
    view: switchStateView(vpn), stats: vpn.stats, stop: () => vpn.stop(),
    summary: `switch mode on ${where} (mtu ${mtu})${address ? `, ${address} on ${ipop.addressDevice}` : ''}`,
  };
}

/**
 * The member's IPv6 address (prefix::<IPv4>) on the TAP. IPv6 is optional: when the kernel
 * refuses it (IPv6 disabled, an MTU below 1280) the VPN carries IPv4 only and says so.
 */
function configureIpv6(tap: TapDevice, configured: string, namespace: string, ip: number, mtu: number, log: Logger): { prefix: Uint8Array; text: string } | undefined {
  const prefix = ipv6PrefixFor(configured, namespace);
  if (!prefix) return undefined;
  const text = ipv6ToString(mappedIpv6(prefix, ip));
  if (mtu < 1280) { log.warn(`IPv6 off: the TAP's MTU ${mtu} is below IPv6's minimum of 1280`); return undefined; }
  try { tap.setIPv6(text, 64); } catch (e) { log.warn(`IPv6 off: cannot add ${text}/64 to ${tap.name}: ${(e as Error).message}`); return undefined; }
  return { prefix, text };
}
