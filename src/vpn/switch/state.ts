// Switch mode's get_state and status view: each member with the MACs learnt behind it, the
// ARP table, and the switch's counters (floods, local ARP answers, MAC moves).
import { macToString } from '../frames.js';
import { peerPath, withRtt, type PeerState, type VpnStateView } from '../get-state.js';
import type { SwitchNode } from './switch-node.js';

export function switchPeers(s: SwitchNode): PeerState[] {
  const macs = new Map<string, string[]>();
  for (const e of s.macs.entries()) {
    let l = macs.get(e.port);
    if (!l) macs.set(e.port, l = []);
    l.push(e.mac);
  }
  return s.members.map((m) => ({ uid: m.address.key, ...peerPath(s.node, m.address), macs: (macs.get(m.address.key) ?? []).sort() }))
    .sort((a, b) => a.uid.localeCompare(b.uid));
}

export function switchLocalState(s: SwitchNode): Record<string, unknown> {
  const st = s.stats, m = s.macs.stats, a = s.arp.stats;
  return {
    mode: 'switch', uid: s.node.address.key, mac: macToString(s.device.mac),
    local_macs: s.macs.entries().filter((e) => e.port === 'local').map((e) => e.mac).sort(),
    arp: s.arp.entries(),
    switch: {
      macs: s.macs.size, unicast: st.unicast, flooded: st.flooded, floodLimited: st.dropFloodLimited,
      localArpAnswers: a.localAnswers, macMoves: m.moves, macMovesHeld: m.movesHeld, macConflicts: m.conflicts, macsAged: m.aged,
      dropNotMember: st.dropNotMember, dropMacConflict: st.dropMacConflict, dropLocalDestination: st.dropLocalDestination,
    },
  };
}

export const switchStateView = (s: SwitchNode): VpnStateView => ({
  getState: () => ({ local_state: switchLocalState(s), peers: switchPeers(s) }),
  status: async () => {
    const byKey = new Map(s.members.map((m) => [m.address.key, m.address]));
    return { local_state: switchLocalState(s), peers: await withRtt(s.node, switchPeers(s), (uid) => byKey.get(uid)) };
  },
});
