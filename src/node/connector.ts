// ConnectTo over RPC (Brunet's sys:ctm.ConnectTo): the requester routes its NodeInfo toward
// a ring point; each responder links to the requester, then answers with its own NodeInfo
// and the nodes it knows nearest the requester. Both sides link at once (which also
// punches through NATs on both sides); the race is settled in the link handshake.
import { Address } from '../address/address.js';
import type { Connection } from '../connection/connection.js';
import { decodeNodeInfo, decodeNodeInfoList, encodeNodeInfo, type NodeInfo } from '../connection/node-info.js';
import type { LinkManager } from '../connection/link-manager.js';
import type { Connector } from '../connection/overlord/overlord.js';
import type { ConnectionTable } from '../connection/table.js';
import { Mode } from '../routing/ah-wire.js';
import { RpcError, type RpcManager } from '../rpc/rpc-manager.js';
import { RpcCode } from '../rpc/rpc-wire.js';
import { asMap, asString, WireError } from '../wire/value.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/log.js';

const CTM_TIMEOUT_MS = 10_000;
const CTM_HEAD_START_MS = 300;

/** What ConnectTo needs from its node (a Node is one). */
export interface ConnectorComponents {
  address: Address;
  /** Our NodeInfo as we advertise it now. */
  info(): NodeInfo;
  rpc: Pick<RpcManager, 'invoke' | 'register'>;
  link: Pick<LinkManager, 'connect'>;
  table: Pick<ConnectionTable, 'nearestTo'>;
  clock: Clock;
  log: Logger;
}

export class RpcConnector implements Connector {
  constructor(private readonly node: ConnectorComponents, private readonly learn: (from: Connection | null, infos: NodeInfo[]) => void) {}

  async connectTo(dest: Address, mode: 'greedy' | 'closest', type: string, via?: Connection): Promise<NodeInfo[]> {
    const n = this.node;
    const req = { type, target: encodeNodeInfo(n.info()) };
    const results = await n.rpc.invoke({ address: dest, mode: mode === 'greedy' ? Mode.Greedy : Mode.Closest, firstHop: via },
      'sys:ctm.ConnectTo', [req], { maxResults: mode === 'greedy' ? 1 : 2, timeoutMs: CTM_TIMEOUT_MS });
    const infos: NodeInfo[] = [];
    for (const r of results) {
      try {
        const m = asMap(r, 'ctm reply');
        const info = decodeNodeInfo(m.local ?? null, 'ctm reply.local');
        infos.push(info);
        this.learn(null, decodeNodeInfoList(m.nb ?? [], 'ctm reply.nb'));
        if (!info.address.equals(n.address)) await n.link.connect(info, type);
      } catch (e) {
        n.log.debug(`bad ConnectTo reply: ${(e as Error).message}`);
      }
    }
    return infos;
  }

  registerHandler(): void {
    const n = this.node;
    n.rpc.register('sys:ctm.ConnectTo', async (args) => {
      let type: string, info: NodeInfo;
      try {
        const m = asMap(args[0] ?? null, 'ConnectTo argument');
        type = asString(m.type ?? null, 'type');
        info = decodeNodeInfo(m.target ?? null, 'target');
      } catch (e) {
        throw new RpcError(RpcCode.BadParams, e instanceof WireError ? e.message : String(e));
      }
      if (!type.startsWith('structured')) throw new RpcError(RpcCode.BadParams, `cannot ConnectTo with type ${type}`);
      if (info.address.equals(n.address)) throw new RpcError(RpcCode.BadParams, 'ConnectTo from ourselves');
      // Both sides dial at once: between two NATs each outbound handshake opens the mapping
      // the other side's needs (hole punching). A short head start lets a plain direct link
      // finish before we answer, so the requester usually finds it already there.
      const linking = n.link.connect(info, type);
      let timer: TimerHandle | undefined;
      await Promise.race([linking, new Promise<void>((r) => { timer = n.clock.setTimeout(r, CTM_HEAD_START_MS); })]);
      timer?.cancel();
      return {
        local: encodeNodeInfo(n.info()),
        nb: n.table.nearestTo(info.address, 3).filter((c) => !c.address.equals(info.address)).map((c) => encodeNodeInfo(c.info)),
      };
    });
  }
}
