// Router mode's get_state and status view: each peer with the IP it verifiably owns.
import type { Address } from '../../address/address.js';
import { ipToString, macToString } from '../frames.js';
import { peerPath, withRtt, type PeerState, type VpnStateView } from '../get-state.js';
import { ipv6ToString, mappedIpv6 } from '../ipv6.js';
import type { IpopNode } from './ipop-node.js';

export const routerStateView = (v: IpopNode): VpnStateView => ({
  getState: () => ({ local_state: localState(v), peers: peerStates(v) }),
  status: async () => {
    const known = knownPeers(v);
    return { local_state: localState(v), peers: await withRtt(v.node, peerStates(v), (uid) => known.get(uid)?.address) };
  },
});

export function peerStates(v: IpopNode): PeerState[] {
  const out: PeerState[] = [];
  for (const p of knownPeers(v).values()) out.push({ uid: p.address.key, ip4: ipToString(p.ip), ...ip6(v, p.ip), ...peerPath(v.node, p.address) });
  return out.sort((a, b) => a.ip4!.localeCompare(b.ip4!, 'en', { numeric: true }));
}

/**
 * The peers to list, one per IP, each with its verified owner only (the signed dhcp: claim,
 * through the resolver): the verified members (see members.ts), and the owners this node
 * resolved for its own traffic within the resolver's freshness time, unless they left cleanly.
 */
function knownPeers(v: IpopNode): Map<string, { address: Address; ip: number }> {
  const byIp = new Map<number, Address>();
  for (const m of v.members) {
    const owner = v.resolver.peek(m.ip);
    if (owner && owner.equals(m.address)) byIp.set(m.ip, owner);
  }
  for (const k of v.resolver.known(v.resolver.freshMs)) {
    if (!k.owner.equals(v.node.address) && !v.memberList.departed.has(k.owner.key)) byIp.set(k.ip, k.owner);
  }
  const byKey = new Map<string, { address: Address; ip: number }>();
  for (const [ip, address] of byIp) byKey.set(address.key, { address, ip });
  return byKey;
}

export function localState(v: IpopNode): Record<string, unknown> {
  const s = v.stats;
  return {
    mode: 'router', uid: v.node.address.key, ip4: ipToString(v.ip), ...ip6(v, v.ip), mac: macToString(v.device.mac),
    // Broadcast and multicast frames (EnableMulticast): sent to the members, received from them, dropped while it is off.
    multicast: { enabled: v.multicast, sent: s.multicastOut, received: s.multicastIn, dropped: s.dropMulticastOff },
  };
}

const ip6 = (v: IpopNode, ip: number): { ip6?: string } => (v.ipv6Prefix ? { ip6: ipv6ToString(mappedIpv6(v.ipv6Prefix, ip)) } : {});

