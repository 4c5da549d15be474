// NodeInfo: an address plus the TAs under which that node may be reached; what CTMs,
// link messages and neighbour lists carry.
import { Address } from '../address/address.js';
import { TransportAddress } from '../transport/ta.js';
import { asBytes, asList, asMap, asString, WireError, type Value } from '../wire/value.js';

export const MAX_NODEINFO_TAS = 12;

export interface NodeInfo {
  address: Address;
  tas: TransportAddress[];
}

export function encodeNodeInfo(n: NodeInfo): Value {
  return { a: n.address.bytes, t: n.tas.slice(0, MAX_NODEINFO_TAS).map((ta) => ta.key) };
}

export function decodeNodeInfo(v: Value, what = 'nodeinfo'): NodeInfo {
  const m = asMap(v, what);
  let address: Address;
  try { address = Address.shared(asBytes(m.a ?? null, `${what}.a`)); } catch (e) {
    throw e instanceof WireError ? e : new WireError(`${what}.a: ${(e as Error).message}`);
  }
  const tas: TransportAddress[] = [];
  for (const t of asList(m.t ?? [], `${what}.t`).slice(0, MAX_NODEINFO_TAS)) {
    // An unknown TA kind from a newer peer is skipped rather than rejecting the message.
    try { tas.push(TransportAddress.parse(asString(t, `${what}.t`))); } catch { /* skip */ }
  }
  // A copy of exactly its length: an array grown by push keeps room for 17 elements, and
  // peers' NodeInfos are kept (neighbour lists of every connection).
  return { address, tas: tas.slice() };
}

export function decodeNodeInfoList(v: Value, what: string, max = 32): NodeInfo[] {
  return asList(v ?? [], what).slice(0, max).map((x, i) => decodeNodeInfo(x, `${what}[${i}]`));
}
