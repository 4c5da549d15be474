// JSON cannot carry bytes: they travel as {"$base64": "..."} in both directions.
import type { Value } from '../wire/value.js';

export function toJson(v: Value): unknown {
  if (v instanceof Uint8Array) return { $base64: Buffer.from(v).toString('base64') };
  if (Array.isArray(v)) return v.map(toJson);
  if (v && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = toJson(x);
    return o;
  }
  return v;
}

export function fromJson(v: unknown): Value {
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map(fromJson);
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o);
    if (keys.length === 1 && keys[0] === '$base64' && typeof o.$base64 === 'string') return new Uint8Array(Buffer.from(o.$base64, 'base64'));
    const out: { [k: string]: Value } = {};
    for (const k of keys) out[k] = fromJson(o[k]);
    return out;
  }
  return null;
}
