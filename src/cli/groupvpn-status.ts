// Talking to a running groupvpn over its local get_state port, and printing its status.
import dgram from 'node:dgram';

export type State = Record<string, unknown>;

/** One request/reply on 127.0.0.1:port; undefined if nothing answers in time. */
export function queryState(port: number, method: string, timeoutMs: number): Promise<State | undefined> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const done = (v: State | undefined) => { clearTimeout(timer); try { s.close(); } catch { /* closed */ } resolve(v); };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    s.on('error', () => done(undefined));
    s.on('message', (m) => { try { done(JSON.parse(m.toString('utf8')) as State); } catch { done(undefined); } });
    s.send(Buffer.concat([Buffer.from([0x02, 0x01]), Buffer.from(JSON.stringify({ m: method }))]), port, '127.0.0.1');
  });
}

interface Peer { uid: string; ip4?: string; macs?: string[]; status: string; path: string; via?: string[]; type?: string; transport?: string; rttMs?: number }

export function printStatus(s: State, say: (l: string) => void): void {
  const l = (s.local_state ?? {}) as Record<string, unknown>;
  say(`state      ${s.state}${s.state === 'starting' ? ` (${s.phase})` : ''}   pid ${s.pid}`);
  say(`node       ${s.node ?? l.uid ?? '-'}`);
  say(`namespace  ${s.namespace}   mode ${s.mode ?? 'router'}   device ${s.device} (mtu ${s.mtu}${s.offload ? ', offload on' : ''})${s.bridge ? ` on bridge ${s.bridge}` : ''}`);
  say(`underlay   ${s.underlay ?? 'unknown (mtu 1500 assumed)'}`);
  const tr = s.traffic as Record<string, number> | undefined;
  if (tr) {
    say(`traffic    sent ${tr.txFrames} frames (${tr.txOffload} offloaded), received ${tr.rxFrames} (${tr.rxOffload} offloaded)`);
    say(`fragments  ${tr.fragmentedOut} messages sent in fragments; repairs: ${tr.fragmentRequests} asked, ${tr.fragmentsResent} fragments resent, ${tr.fragmentedLost} messages lost`);
  }
  if (l.ip4) say(`address    ${l.ip4}${l.ip6 ? `   ${l.ip6}` : ''}   mac ${l.mac}`);
  const mc = l.multicast as { enabled: boolean; sent: number; received: number; dropped: number } | undefined;
  if (mc) say(`multicast  ${mc.enabled ? `on: ${mc.sent} copies sent, ${mc.received} received` : 'off'}, ${mc.dropped} dropped`);
  say(`ring       ${s.ring}, ${s.connections} connections, on-demand ${s.onDemand ? 'on' : 'off (all members connected)'}`);
  const sw = l.mode === 'switch';
  if (sw) printSwitch(l, say);
  const peers = (s.peers ?? []) as Peer[];
  if (peers.length === 0) { say('peers      none known yet'); return; }
  say('peers');
  const rows = peers.map((p) => [sw ? (p.macs?.join(',') || '-') : p.ip4 ?? '-', p.status, p.via?.length ? `${p.path} via ${p.via.map((k) => k.slice(12, 20)).join(',')}` : p.path, p.type ?? '-', p.transport ?? '-', p.rttMs === undefined ? '-' : `${p.rttMs} ms`, p.uid]);
  const head = [sw ? 'MACS' : 'IP', 'STATE', 'PATH', 'TYPE', 'EDGE', 'RTT', 'NODE'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows]) say('  ' + r.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd());
}

/** Switch mode: the counters, the local MACs and the ARP table. */
function printSwitch(l: Record<string, unknown>, say: (l: string) => void): void {
  const c = (l.switch ?? {}) as Record<string, number>;
  say(`switch     ${c.macs} MACs learnt; ${c.unicast} frames to known MACs, ${c.flooded} flooded (${c.floodLimited} over the flood limit); ${c.localArpAnswers} ARP requests answered locally`);
  say(`           MAC moves ${c.macMoves} (${c.macMovesHeld} held), conflicts ${c.macConflicts}, aged out ${c.macsAged}; refused: ${c.dropNotMember} from non-members, ${c.dropMacConflict} MAC conflicts`);
  say(`local MACs ${((l.local_macs ?? []) as string[]).join(' ') || 'none yet'}`);
  const arp = (l.arp ?? []) as Array<{ ip: string; mac: string; port: string; ageMs: number }>;
  if (arp.length === 0) { say('arp        none learnt yet'); return; }
  say('arp');
  for (const e of arp) say(`  ${e.ip.padEnd(15)}  ${e.mac}  ${e.port === 'local' ? 'local' : e.port}  ${Math.round(e.ageMs / 1000)} s`);
}
