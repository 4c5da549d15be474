// IPOP's local state query on 127.0.0.1 (default port 5800). A request is a datagram with
// IPOP's two-byte header (version 0x01-0x03, type 0x01 = control) followed by JSON, or the
// bare JSON. Methods:
//   {"m":"get_state"}  → {"local_state":{uid,ip4,ip6,mac,...},"peers":[{uid,ip4,ip6,status},...]}
//   {"m":"status"}     → what `groupvpn status` shows (ring state, per-peer path, type, RTT)
// Replies are bare JSON (no header), so `nc -u` output pipes straight into jq.
import dgram from 'node:dgram';
import type { Address } from '../address/address.js';
import { Mode } from '../routing/ah-wire.js';
import { ipToString, macToString } from './frames.js';
import type { IpopNode } from './group/ipop-node.js';
import { ipv6ToString, mappedIpv6 } from './ipv6.js';

export interface PeerState {
  uid: string;
  ip4: string;
  /** With IPv6 on: the peer's member address (prefix::ip4). */
  ip6?: string;
  status: 'online' | 'offline';
  /**
   * direct: an overlay connection over UDP/TCP; relayed: a connection over a relay edge
   * (through `via`); routed: no connection, packets go greedily over other nodes.
   */
  path: 'direct' | 'relayed' | 'routed';
  via?: string[];
  type?: string;
  transport?: string;
  rttMs?: number;
}

const MAX_REQUEST = 4096;

export function peerStates(v: IpopNode): PeerState[] {
  const out: PeerState[] = [];
  for (const p of knownPeers(v).values()) {
    const c = v.node.table.get(p.address);
    const relayed = c?.edge.kind === 'tunnel';
    out.push({
      uid: p.address.key, ip4: ipToString(p.ip), ...ip6(v, p.ip), status: c ? 'online' : 'offline', path: !c ? 'routed' : relayed ? 'relayed' : 'direct',
      ...(c ? { type: c.type, transport: c.edge.kind } : {}),
      ...(relayed ? { via: (v.node.tunnel?.forwardersFor(p.address) ?? []).map((a) => a.key) } : {}),
    });
  }
  return out.sort((a, b) => a.ip4.localeCompare(b.ip4, 'en', { numeric: true }));
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

export function localState(v: IpopNode, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { uid: v.node.address.key, ip4: ipToString(v.ip), ...ip6(v, v.ip), mac: macToString(v.device.mac), ...extra };
}

const ip6 = (v: IpopNode, ip: number): { ip6?: string } => (v.ipv6Prefix ? { ip6: ipv6ToString(mappedIpv6(v.ipv6Prefix, ip)) } : {});

/** Peers' RTTs by an overlay ping each (in parallel, bounded), for `groupvpn status`. */
async function withRtt(v: IpopNode, peers: PeerState[]): Promise<PeerState[]> {
  const known = knownPeers(v);
  await Promise.all(peers.map(async (p) => {
    const owner = known.get(p.uid)?.address;
    if (!owner) return;
    const t0 = performance.now();
    try {
      await v.node.rpc.call({ address: owner, mode: Mode.Exact }, 'sys:link.Ping', [0], { timeoutMs: 1000 });
      p.rttMs = Math.round((performance.now() - t0) * 100) / 100;
    } catch { /* unreachable right now: no RTT */ }
  }));
  return peers;
}

export class GetStateServer {
  private socket?: dgram.Socket;

  /** `vpn` is undefined while the node is still starting; status() says how far it got. */
  constructor(private readonly vpn: () => IpopNode | undefined, private readonly port: number, private readonly status: () => Record<string, unknown>) {}

  async start(): Promise<void> {
    const s = this.socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      s.once('error', (e: NodeJS.ErrnoException) => reject(new Error(e.code === 'EADDRINUSE'
        ? `get_state port 127.0.0.1:${this.port} is in use (another groupvpn? set <GetStatePort>)` : `get_state port: ${e.message}`)));
      s.bind(this.port, '127.0.0.1', () => resolve());
    });
    s.on('error', () => {});
    s.on('message', (msg, rinfo) => void this.answer(msg, rinfo.port, rinfo.address));
  }

  get boundPort(): number { return this.socket?.address().port ?? 0; }

  close(): void { try { this.socket?.close(); } catch { /* already closed */ } }

  private async answer(msg: Buffer, port: number, address: string): Promise<void> {
    let reply: unknown;
    try {
      if (msg.length > MAX_REQUEST) throw new Error('request too large');
      const body = msg[0]! <= 0x03 && msg[1] === 0x01 ? msg.subarray(2) : msg;
      const req = JSON.parse(body.toString('utf8')) as { m?: unknown };
      const v = this.vpn();
      if (req.m === 'get_state') reply = v ? { local_state: localState(v), peers: peerStates(v) } : { local_state: this.status(), peers: [] };
      else if (req.m === 'status') reply = v ? { ...this.status(), local_state: localState(v), peers: await withRtt(v, peerStates(v)) } : this.status();
      else if (req.m === 'echo_request') reply = { type: 'echo_reply', msg: (req as { msg?: unknown }).msg ?? null };
      else reply = { error: `unknown method ${JSON.stringify(req.m ?? null)}` };
    } catch (e) {
      reply = { error: `bad request: ${(e as Error).message}` };
    }
    this.socket?.send(JSON.stringify(reply) + '\n', port, address);
  }
}
