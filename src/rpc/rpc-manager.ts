// Request/reply over the overlay (routed) or over one connection. Requests carry ids;
// lost ones are resent a bounded number of times with an adaptive timeout (SRTT + 4·RTTVAR,
// as TCP), and the receiver suppresses duplicates by replaying its cached reply. A routed request
// still unanswered after its resends gets one late retry, halfway to its deadline: by then a
// crashed node on its route has missed its liveness probes and is routed around.
import type { Address } from '../address/address.js';
import type { Connection } from '../connection/connection.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import type { RandomSource } from '../util/random.js';
import { WireError, type Value } from '../wire/value.js';
import { FLAG_EDGE, Mode, Payload, type AhHeader } from '../routing/ah-wire.js';
import type { Router } from '../routing/router.js';
import { decodeRpc, encodeRpc, MAX_RPC_BYTES, RpcCode, RpcKind, type RpcMessage } from './rpc-wire.js';

export class RpcError extends Error {
  override name = 'RpcError';
  constructor(readonly code: number, message: string) { super(message); }
}

export interface CallContext {
  /** The caller's address (ourselves for local calls). */
  from: Address;
  /** True only for calls from this process (the control API): gates local-only methods. */
  local: boolean;
  /** The connection a single-edge request arrived on. */
  via?: Connection;
  /** Overlay hops the request took (0 for local calls). */
  hops: number;
}
export type RpcHandler = (args: Value[], ctx: CallContext) => Value | Promise<Value>;

/** Where a request goes: routed to an address, or over one connection. */
export type Target = { address: Address; mode: Mode; firstHop?: Connection } | { via: Connection };

export interface InvokeOptions { maxResults?: number; timeoutMs?: number; resends?: number }

interface Pending { results: Value[]; max: number; done: (err?: RpcError) => void; sentAt: number; resent: boolean }

const DUP_CACHE = 4096;
const DUP_TTL_MS = 60_000;

export class RpcManager {
  /** requests: calls made; served: requests answered (duplicates excluded); errors: error replies to our calls. */
  readonly stats = { requests: 0, replies: 0, resends: 0, duplicates: 0, timeouts: 0, malformed: 0, served: 0, errors: 0 };
  private handlers = new Map<string, RpcHandler>();
  private pending = new Map<number, Pending>();
  private seen = new Map<string, { at: number; reply?: Uint8Array }>();
  private nextId: number;
  private srtt = 0;
  private rttvar = 0;

  constructor(
    private readonly self: Address,
    private readonly router: Router,
    private readonly clock: Clock,
    random: RandomSource,
    private readonly log: Logger,
  ) {
    this.nextId = random.int(0x7fffffff) + 1;
    router.register(Payload.Rpc, (p, h, from) => this.onPacket(p, h, from));
  }

  register(method: string, h: RpcHandler): void { this.handlers.set(method, h); }

  /** Current retransmission timeout. */
  get rto(): number {
    if (this.srtt === 0) return 1000;
    return Math.min(8000, Math.max(150, this.srtt + 4 * this.rttvar));
  }

  /** Runs a handler in-process (the control API's localproxy). */
  async callLocal(method: string, args: Value[]): Promise<Value> {
    const h = this.handlers.get(method);
    if (!h) throw new RpcError(RpcCode.NoHandler, `no handler for ${method}`);
    return h(args, { from: this.self, local: true, hops: 0 });
  }

  async call(t: Target, method: string, args: Value[], opts: InvokeOptions = {}): Promise<Value> {
    const r = await this.invoke(t, method, args, { maxResults: 1, timeoutMs: opts.timeoutMs, resends: opts.resends }); // one shape (docs/architecture.md, Object shapes)
    if (r.length === 0) throw new RpcError(RpcCode.Timeout, `${method}: no reply`);
    return r[0]!;
  }

  /** Collects up to maxResults replies (closest mode may get two) until the deadline. */
  invoke(t: Target, method: string, args: Value[], opts: InvokeOptions = {}): Promise<Value[]> {
    const id = this.nextId = (this.nextId % 0xfffffffe) + 1;
    const pkt = encodeRpc({ kind: RpcKind.Request, id, method, args });
    if (pkt.length > MAX_RPC_BYTES) {
      return Promise.reject(new RpcError(RpcCode.BadParams, `${method}: request of ${pkt.length} bytes exceeds the ${MAX_RPC_BYTES} an RPC message can carry`));
    }
    const max = opts.maxResults ?? 1;
    const resends = opts.resends ?? 3;
    const deadline = this.clock.now() + (opts.timeoutMs ?? 10_000);
    this.stats.requests++;
    return new Promise((resolve, reject) => {
      let timer: TimerHandle | undefined;
      let tries = 0;
      /** 1 once the late retry of a routed request is planned. */
      let late = 0;
      const p: Pending = {
        results: [], max, sentAt: 0, resent: false,
        done: (err) => {
          timer?.cancel();
          this.pending.delete(id);
          if (err && p.results.length === 0) reject(err); else resolve(p.results);
        },
      };
      const send = () => {
        const now = this.clock.now();
        if (p.results.length > 0 || tries > resends + late || now >= deadline) {
          if (p.results.length === 0) this.stats.timeouts++;
          return p.done(new RpcError(RpcCode.Timeout, `${method}: no reply after ${tries} tries`));
        }
        if (tries > 0) { this.stats.resends++; p.resent = true; }
        p.sentAt = now;
        tries++;
        this.transmit(t, pkt);
        // After the last resend, wait out the deadline (a handler may take a while: linking),
        // a routed request with a late retry halfway there.
        let wait = deadline - now;
        if (tries <= resends) wait = Math.min(this.rto * 2 ** (tries - 1), wait);
        else if (tries === resends + 1 && !('via' in t) && wait > 8 * this.rto) { late = 1; wait /= 2; }
        timer = this.clock.setTimeout(send, Math.max(1, wait));
      };
      this.pending.set(id, p);
      send();
    });
  }

  private transmit(t: Target, pkt: Uint8Array): void {
    if ('via' in t) this.router.sendVia(t.via, Payload.Rpc, pkt);
    else this.router.send(t.address, t.mode, Payload.Rpc, pkt, t.firstHop);
  }

  private onPacket(p: Uint8Array, h: AhHeader, from: Connection | null): void {
    let m: RpcMessage;
    try { m = decodeRpc(p); } catch (e) {
      this.stats.malformed++;
      if (!(e instanceof WireError)) this.log.warn(`rpc decode: ${(e as Error).message}`);
      if (e instanceof WireError && p.length >= 6 && p[1] === RpcKind.Request) {
        const id = new DataView(p.buffer, p.byteOffset, p.byteLength).getUint32(2);
        this.reply(h, from, encodeRpc({ kind: RpcKind.Error, id, code: RpcCode.NotAList, message: `malformed request: ${e.message}` }));
      }
      return;
    }
    if (m.kind === RpcKind.Request) return void this.onRequest(m, h, from);
    const pend = this.pending.get(m.id);
    if (!pend) return;
    if (!pend.resent) this.sample(this.clock.now() - pend.sentAt);
    this.stats.replies++;
    if (m.kind === RpcKind.Error) { this.stats.errors++; return pend.done(new RpcError(m.code, m.message)); }
    pend.results.push(m.result);
    if (pend.results.length >= pend.max) pend.done();
  }

  private sample(rtt: number): void {
    if (this.srtt === 0) { this.srtt = rtt; this.rttvar = rtt / 2; return; }
    this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - rtt);
    this.srtt = 0.875 * this.srtt + 0.125 * rtt;
  }

  private async onRequest(m: Extract<RpcMessage, { kind: RpcKind.Request }>, h: AhHeader, from: Connection | null): Promise<void> {
    const key = `${h.src.key}/${m.id}`;
    const now = this.clock.now();
    const dup = this.seen.get(key);
    if (dup && now - dup.at < DUP_TTL_MS) {
      this.stats.duplicates++;
      if (dup.reply) this.reply(h, from, dup.reply);
      return;
    }
    // Entries sit in arrival order (a key seen again is deleted first, so it moves to the end):
    // the expired ones are at the front. Without this a node kept every request it served, reply
    // included, until DUP_CACHE newer ones pushed it out, so the cache (about 20 KB per node
    // in a 2,000-node simulation just formed) only grew the longer a node served.
    for (const [k, e] of this.seen) {
      if (now - e.at < DUP_TTL_MS) break;
      this.seen.delete(k);
    }
    if (dup) this.seen.delete(key);
    const entry: { at: number; reply?: Uint8Array } = { at: now };
    this.seen.set(key, entry);
    if (this.seen.size > DUP_CACHE) this.seen.delete(this.seen.keys().next().value!);
    let out: Uint8Array;
    const handler = this.handlers.get(m.method);
    if (!handler) {
      out = encodeRpc({ kind: RpcKind.Error, id: m.id, code: RpcCode.NoHandler, message: `no handler for ${m.method}` });
    } else {
      try {
        const result = await handler(m.args, { from: h.src, local: false, via: h.flags & FLAG_EDGE ? from ?? undefined : undefined, hops: h.hops });
        out = encodeRpc({ kind: RpcKind.Reply, id: m.id, result });
      } catch (e) {
        const code = e instanceof RpcError ? e.code : RpcCode.Threw;
        out = encodeRpc({ kind: RpcKind.Error, id: m.id, code, message: (e as Error).message ?? String(e) });
      }
    }
    if (out.length > MAX_RPC_BYTES) {
      // Too big to be carried: the caller hears why at once instead of timing out.
      const message = `${m.method}: reply of ${out.length} bytes exceeds the ${MAX_RPC_BYTES} an RPC message can carry`;
      out = encodeRpc({ kind: RpcKind.Error, id: m.id, code: RpcCode.Remote, message });
    }
    entry.reply = out;
    this.stats.served++;
    this.reply(h, from, out);
  }

  private reply(h: AhHeader, from: Connection | null, pkt: Uint8Array): void {
    if (h.flags & FLAG_EDGE && from) this.router.sendVia(from, Payload.Rpc, pkt);
    else if (h.src.equals(this.self)) queueMicrotask(() => this.onPacket(pkt, { ...h, src: this.self }, null));
    else this.router.send(h.src, Mode.Exact, Payload.Rpc, pkt);
  }
}
