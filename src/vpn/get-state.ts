// IPOP's local state query on 127.0.0.1 (default port 5800). A request is a datagram with
// IPOP's two-byte header (version 0x01-0x03, type 0x01 = control) followed by JSON, or the
// bare JSON. Methods:
//   {"m":"get_state"}  → {"local_state":{uid,ip4,ip6,mac,...},"peers":[{uid,ip4,ip6,status},...]}
//   {"m":"status"}     → what `groupvpn status` shows (ring state, per-peer path, type, RTT)
// Replies are bare JSON (no header), so `nc -u` output pipes straight into jq. Each mode gives
// its own view (VpnStateView): router mode's is here, switch mode's in switch/state.ts.
import dgram from 'node:dgram';
import type { Address } from '../address/address.js';
import { Mode } from '../routing/ah-wire.js';
import type { VpnNodeComponents } from './frame-path.js';

/** What get_state and status show of a running VPN, in either mode. */
export interface VpnStateView {
  getState(): { local_state: Record<string, unknown>; peers: PeerState[] } & Record<string, unknown>;
  /** As getState, with each peer's RTT. */
  status(): Promise<Record<string, unknown>>;
}

export interface PeerState {
  uid: string;
  /** Router mode: the member's IP. */
  ip4?: string;
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
  /** Switch mode: the MACs learnt behind the peer. */
  macs?: string[];
}

const MAX_REQUEST = 4096;

/** How a peer is reached: its connection (direct or over a relay edge, through whom), or none yet. */
export function peerPath(node: Pick<VpnNodeComponents, 'table' | 'tunnel'>, address: Address): Pick<PeerState, 'status' | 'path' | 'via' | 'type' | 'transport'> {
  const c = node.table.get(address);
  const relayed = c?.edge.kind === 'tunnel';
  return {
    status: c ? 'online' : 'offline', path: !c ? 'routed' : relayed ? 'relayed' : 'direct',
    ...(c ? { type: c.type, transport: c.edge.kind } : {}),
    ...(relayed ? { via: (node.tunnel?.forwardersFor(address) ?? []).map((a) => a.key) } : {}),
  };
}

/** Peers' RTTs by an overlay ping each (in parallel, bounded), for `groupvpn status`. */
export async function withRtt(node: Pick<VpnNodeComponents, 'rpc'>, peers: PeerState[], addressOf: (uid: string) => Address | undefined): Promise<PeerState[]> {
  await Promise.all(peers.map(async (p) => {
    const owner = addressOf(p.uid);
    if (!owner) return;
    const t0 = performance.now();
    try {
      await node.rpc.call({ address: owner, mode: Mode.Exact }, 'sys:link.Ping', [0], { timeoutMs: 1000 });
      p.rttMs = Math.round((performance.now() - t0) * 100) / 100;
    } catch { /* unreachable right now: no RTT */ }
  }));
  return peers;
}

export class GetStateServer {
  private socket?: dgram.Socket;

  /** `vpn` is undefined while the node is still starting; status() says how far it got. */
  constructor(private readonly vpn: () => VpnStateView | undefined, private readonly port: number, private readonly status: () => Record<string, unknown>) {}

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
      if (req.m === 'get_state') reply = v ? v.getState() : { local_state: this.status(), peers: [] };
      else if (req.m === 'status') reply = v ? { ...this.status(), ...await v.status() } : this.status();
      else if (req.m === 'echo_request') reply = { type: 'echo_reply', msg: (req as { msg?: unknown }).msg ?? null };
      else reply = { error: `unknown method ${JSON.stringify(req.m ?? null)}` };
    } catch (e) {
      reply = { error: `bad request: ${(e as Error).message}` };
    }
    this.socket?.send(JSON.stringify(reply) + '\n', port, address);
  }
}
