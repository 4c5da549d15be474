// JSON cannot carry bytes: they travel as {"$base64": "..."} in both directions.
// Nesting is limited like XML-RPC's (MAX_DEPTH), so a deep request cannot exhaust the stack.
import type { Value } from '../wire/value.js';
import { MAX_DEPTH } from './xmlrpc.js';

export class JsonDepthError extends Error {
  override name = 'JsonDepthError';
  constructor() { super(`values nested deeper than ${MAX_DEPTH}`); }
}

export function toJson(v: Value, depth = 1): unknown {
  if (depth > MAX_DEPTH) throw new JsonDepthError();
  if (v instanceof Uint8Array) return { $base64: Buffer.from(v).toString('base64') };
  if (Array.isArray(v)) return v.map((x) => toJson(x, depth + 1));
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = toJson(x, depth + 1);
    return o;
  }
  return v;
}

export function fromJson(v: unknown, depth = 1): Value {
  if (depth > MAX_DEPTH) throw new JsonDepthError();
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map((x) => fromJson(x, depth + 1));
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === '$base64' && typeof o.$base64 === 'string') return new Uint8Array(Buffer.from(o.$base64, 'base64'));
    const out: { [k: string]: Value } = {};
    for (const k of keys) out[k] = fromJson(o[k], depth + 1);
    return out;
  }
  return null;
}
