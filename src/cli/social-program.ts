// The `socialvpn` VPN program: its config, its mode and its status lines, for the commands it
// shares with groupvpn (vpn-command.ts). socialvpn.ts loads this only for start|stop|status|run.
import { fileURLToPath } from 'node:url';
import type { State } from './groupvpn-status.js';
import { loadSocialConfig, startSocialMode } from './social-mode.js';
import { DEFAULT_SOCIAL_CONFIG, SOCIALVPN_USAGE } from './socialvpn-friends.js';
import type { VpnProgram } from './vpn-program.js';

interface Peer { user: string; device: string; name: string; ip4: string; status: string; path: string; via?: string[]; transport?: string; rttMs?: number; uid: string }

const local = (s: State) => (s.local_state ?? {}) as Record<string, unknown>;

function printStatus(s: State, say: (l: string) => void): void {
  const l = local(s);
  say(`state      ${s.state}${s.state === 'starting' ? ` (${s.phase})` : ''}   pid ${s.pid}`);
  say(`user       ${l.user ?? '-'}   device ${l.device ?? '-'}`);
  say(`address    ${l.ip4 ?? '-'} on ${s.device} (mtu ${s.mtu})`);
  say(`node       ${s.node ?? l.uid ?? '-'}   ring ${s.ring}, ${s.connections} connections`);
  const c = (l.social ?? {}) as Record<string, number>;
  if (l.social) say(`refused    ${c.refusedNotFriend} hellos from non-friends, ${c.refusedBadCert} bad certificates, ${c.dropNotFriend} frames from or to non-friends`);
  const peers = (s.peers ?? []) as Peer[];
  if (peers.length === 0) { say('friends    no friend device found yet'); return; }
  say('friends');
  const rows = peers.map((p) => [p.name, p.ip4, p.status, p.path === 'routed' ? '-' : p.path, p.transport ?? '-', p.rttMs === undefined ? '-' : `${p.rttMs} ms`]);
  const head = ['NAME', 'IP', 'STATE', 'PATH', 'EDGE', 'RTT'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows]) say('  ' + r.map((x, i) => x.padEnd(w[i]!)).join('  ').trimEnd());
}

export const socialvpn = (script: string): VpnProgram => ({
  name: 'socialvpn',
  script,
  usage: SOCIALVPN_USAGE,
  defaultConfig: DEFAULT_SOCIAL_CONFIG,
  load: loadSocialConfig,
  startMode: startSocialMode,
  startedLine: (s) => `${local(s).ip4} on ${s.device}, user ${local(s).user}, device ${local(s).device}, node ${local(s).uid}`,
  printStatus,
  statusJson: (s) => ({
    self: { user: local(s).user, device: local(s).device, ip4: local(s).ip4 },
    peers: ((s.peers ?? []) as Peer[]).map((p) => ({
      user: p.user, device: p.device, name: p.name, ip4: p.ip4, status: p.status, path: p.path === 'routed' ? 'none' : p.path,
      ...(p.rttMs === undefined ? {} : { rttMs: p.rttMs }), node: p.uid,
    })),
    state: s.state, pid: s.pid, node: s.node, social: local(s).social,
  }),
});
