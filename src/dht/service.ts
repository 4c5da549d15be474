// Attaches the DHT to a node: the replica server, the client, registrations, and the
// local-only DhtClient.* / RpcDhtProxy.* methods the control API (bget, bput) calls.
import { RpcError, type CallContext } from '../rpc/rpc-manager.js';
import { RpcCode } from '../rpc/rpc-wire.js';
import type { Value } from '../wire/value.js';
import { Dht, type DhtComponents } from './dht.js';
import type { Signer } from './claims.js';
import { DEFAULT_DHT_LIMITS, DhtError, type DhtLimits } from './limits.js';
import { Registrations } from './registration.js';
import type { TableStore } from './store.js';
import { TableServer, type TableServerComponents } from './table-server.js';

/** Codes the control API reports for DHT failures. */
export const enum DhtCode { Failed = -32010, Exists = -32011, Invalid = -32012 }

/** What the DHT needs from its node: the client's and the replica server's needs (a Node is one). */
export type DhtServiceComponents = DhtComponents & TableServerComponents;

export class DhtService {
  readonly server: TableServer;
  readonly dht: Dht;
  readonly registrations: Registrations;

  constructor(private readonly node: DhtServiceComponents, store: TableStore, limits: Partial<DhtLimits> = {}, signer?: Signer) {
    const l = { ...DEFAULT_DHT_LIMITS, ...limits };
    this.server = new TableServer(node, store, l);
    this.dht = new Dht(node, l, signer);
    this.registrations = new Registrations(this.dht, node.clock, node.log);
    this.registerClientMethods();
  }

  async close(): Promise<void> {
    this.registrations.close();
    await this.server.close();
  }

  private registerClientMethods(): void {
    const rpc = this.node.rpc;
    const local = (f: (a: Value[]) => Promise<Value>) => async (a: Value[], ctx: CallContext) => {
      if (!ctx.local) throw new RpcError(RpcCode.NoHandler, 'DhtClient methods are local-only');
      try { return await f(a); } catch (e) {
        if (e instanceof DhtError) {
          const code = /already exists/.test(e.message) ? DhtCode.Exists : e.counts ? DhtCode.Failed : DhtCode.Invalid;
          throw new RpcError(code, e.message);
        }
        throw e;
      }
    };
    const write = (create: boolean) => local(async (a) => {
      const [key, value, ttl] = [bytes(a[0], 'key'), bytes(a[1], 'value'), ttlOf(a[2])];
      if (value.length === 0) throw new DhtError('the value is empty');
      await (create ? this.dht.create(key, value, ttl) : this.dht.put(key, value, ttl));
      return true;
    });
    rpc.register('DhtClient.Put', write(false));
    rpc.register('DhtClient.Create', write(true));
    rpc.register('DhtClient.Get', local(async (a) => (await this.dht.get(bytes(a[0], 'key'))).map((v) => ({ value: v.value, ttl: v.ttl, age: v.age, ...(v.claimer ? { claimer: v.claimer.key } : {}) }))));
    rpc.register('RpcDhtProxy.Register', local(async (a) => {
      await this.registrations.register(bytes(a[0], 'key'), bytes(a[1], 'value'), ttlOf(a[2]), a[3] === true);
      return true;
    }));
    rpc.register('RpcDhtProxy.Unregister', local(async (a) => this.registrations.unregister(bytes(a[0], 'key'), bytes(a[1], 'value'))));
    rpc.register('RpcDhtProxy.ListEntries', local(async () => this.registrations.list().map((r) => ({ key: r.key, value: r.value, ttl: r.ttl, ok: r.lastOk != null }))));
  }
}

/** Keys and values arrive as bytes (XML-RPC base64) or strings (UTF-8). */
function bytes(v: Value | undefined, what: string): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v === 'string') return new TextEncoder().encode(v);
  throw new DhtError(`${what} must be a string or bytes`);
}

function ttlOf(v: Value | undefined): number {
  if (typeof v === 'string' && /^\d+$/.test(v)) return Number(v);
  if (typeof v === 'number') return v;
  throw new DhtError(`ttl must be a number of seconds, got ${JSON.stringify(v ?? null)}`);
}
