// SocialVPN's get_state and status view: who we are (user, device, address) and each friend
// device we know, with its name, our local IP for it, and whether it is online (the friendship
// proven both ways and a connection up) over a direct or a relayed edge.
import { ipToString } from '../frames.js';
import { peerPath, withRtt, type PeerState, type VpnStateView } from '../get-state.js';
import type { SocialNode } from './social-node.js';

export interface SocialPeer extends PeerState {
  user: string;
  device: string;
  /** Its DNS name: <device>.<user>.svpn. */
  name: string;
}

export function socialPeers(s: SocialNode): SocialPeer[] {
  return s.devices.all().map((d) => {
    const p = peerPath(s.node, d.node);
    const online = p.status === 'online' && s.devices.mutual(d);
    return {
      uid: d.node.key, user: d.alias, device: d.deviceName, name: `${d.deviceName}.${d.alias}.svpn`, ip4: ipToString(d.localIp),
      ...p, status: online ? 'online' as const : 'offline' as const,
    };
  }).sort((a, b) => a.name.localeCompare(b.name));
}

export function socialLocalState(s: SocialNode, self: { user: string; device: string }): Record<string, unknown> {
  const st = s.stats, h = s.devices.stats;
  return {
    mode: 'social', uid: s.node.address.key, user: self.user, device: self.device, ip4: ipToString(s.ip),
    social: {
      hellosIn: h.hellosIn, hellosOut: h.hellosOut, refusedNotFriend: h.notFriend, refusedBadCert: h.badCert, refusedWrongNode: h.wrongNode, badHello: h.badHello,
      dropNotFriend: st.dropNotFriend, dropNotCarried: st.dropNotCarried, dropNotOurSource: st.dropNotOurSource, dropUnknownIp: st.dropUnknownIp,
      dropTranslate: st.dropTranslate, arpReplies: st.arpReplies, records: s.discovery.stats,
    },
  };
}

export const socialStateView = (s: SocialNode, self: { user: string; device: string }): VpnStateView => ({
  getState: () => ({ local_state: socialLocalState(s, self), peers: socialPeers(s) }),
  status: async () => {
    const peers = socialPeers(s);
    const byKey = new Map(s.devices.all().map((d) => [d.node.key, d.node]));
    return { local_state: socialLocalState(s, self), peers: await withRtt(s.node, peers, (uid) => byKey.get(uid)) };
  },
});
