// RPC messages, carried as routed payload type RPC:
//   version (1) | kind (1: request, 2: reply, 3: error) | id (u32) | value-encoded body
// A request body is [method, [args...]]; a reply body is the result; an error body is
// {code, message} with Brunet's codes (-32601 no handler, -32602 bad params, -32608 the
// handler threw).
import { MAX_MESSAGE } from '../transport/udp-fragments.js';
import { asInt, asList, asMap, asString, decodeValue, encodeValue, WireError, type Value } from '../wire/value.js';

export const RPC_VERSION = 1;
export const enum RpcKind { Request = 1, Reply = 2, Error = 3 }
export const enum RpcCode { NotAList = -32600, NoHandler = -32601, BadParams = -32602, Remote = -32603, Threw = -32608, Timeout = -32000 }

/** The largest RPC message every transport carries: a UDP message less room for the routing
 *  header and encryption. A bigger reply is answered with an error instead of being dropped. */
export const MAX_RPC_BYTES = MAX_MESSAGE - 1024;

export type RpcMessage =
  | { kind: RpcKind.Request; id: number; method: string; args: Value[] }
  | { kind: RpcKind.Reply; id: number; result: Value }
  | { kind: RpcKind.Error; id: number; code: number; message: string };

export function encodeRpc(m: RpcMessage): Uint8Array {
  const body: Value = m.kind === RpcKind.Request ? [m.method, m.args]
    : m.kind === RpcKind.Reply ? m.result : { code: m.code, message: m.message };
  const out = encodeValue(body, 6);
  out[0] = RPC_VERSION; out[1] = m.kind;
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(2, m.id);
  return out;
}

export function decodeRpc(p: Uint8Array): RpcMessage {
  if (p.length < 7) throw new WireError('rpc message too short');
  if (p[0] !== RPC_VERSION) throw new WireError(`unsupported rpc version ${p[0]}`);
  const id = new DataView(p.buffer, p.byteOffset, p.byteLength).getUint32(2);
  const body = decodeValue(p, 6);
  switch (p[1]) {
    case RpcKind.Request: {
      const l = asList(body, 'request');
      if (l.length !== 2) throw new WireError('request must be [method, args]');
      const method = asString(l[0]!, 'method');
      if (method.length > 128) throw new WireError('method name too long');
      return { kind: RpcKind.Request, id, method, args: asList(l[1]!, 'args') };
    }
    case RpcKind.Reply: return { kind: RpcKind.Reply, id, result: body };
    case RpcKind.Error: {
      const m = asMap(body, 'error');
      return { kind: RpcKind.Error, id, code: asInt(m.code ?? null, 'error.code'), message: asString(m.message ?? '', 'error.message') };
    }
    default: throw new WireError(`unknown rpc kind ${p[1]}`);
  }
}
