// Wire format of the connection layer. Every packet on an edge starts with a PType byte:
// LINK packets are handled here; ROUTED packets belong to the routing layer and RELAY
// packets to the tunnel listener (src/connection/relay-wire.ts); both are only accepted
// on edges that completed the link handshake.
//
//   LINK packet: PType (1) | version (1) | message type (1) | value-encoded body
import { Address } from '../address/address.js';
import { TransportAddress } from '../transport/ta.js';
import { asBool, asBytes, asInt, asList, asMap, asString, decodeValueRaw, encodeValue, WireError, type Encodable, type Value } from '../wire/value.js';
import { decodeNodeInfo, decodeNodeInfoListRaw, encodeNodeInfo, encodeNodeInfoOnce as encodeInfo, MAX_NODEINFO_TAS, type NodeInfo } from './node-info.js';

export const PTYPE_LINK = 0x01;
export const PTYPE_ROUTED = 0x02;
export const PTYPE_RELAY = 0x03;
export const LINK_VERSION = 1;

/** Reasons a responder refuses a link (Brunet's ErrorMessage codes where they exist). */
export const enum LinkError {
  Ok = 0,
  Realm = 3,
  ConnectToSelf = 16,
  InProgress = 17,
  AlreadyConnected = 18,
  TargetMismatch = 19,
  Disconnecting = 20,
}

export type LinkMessage =
  | { t: 'start'; id: number; realm: string; type: string; local: NodeInfo; target?: Address; remoteTA?: TransportAddress; token: string }
  | { t: 'reply'; id: number; code: LinkError; local: NodeInfo; remoteTA?: TransportAddress; neighbors: NodeInfo[] }
  | { t: 'close'; reason: string; neighbors: NodeInfo[] }
  | { t: 'ping'; nonce: number }
  | { t: 'pong'; nonce: number }
  /** tas: the sender's current TAs, when they changed since the handshake (NAT mapping learnt, relay forwarders). */
  | { t: 'status'; neighbors: NodeInfo[]; tas?: readonly TransportAddress[] }
  | { t: 'statusreq' }
  | { t: 'settype'; type: string }
  /**
   * Sent over a relay connection before trying to replace it with a direct edge. dial false:
   * "I am dialling you now: send a few packets towards my TAs so your NAT lets me in";
   * dial true: "you dial me now (I will open my side)".
   */
  | { t: 'punch'; dial: boolean };

/** Message codes: a message's code is its index here. */
export const CODES = ['start', 'reply', 'close', 'ping', 'pong', 'status', 'statusreq', 'settype', 'punch'] as const;

export function encodeLink(m: LinkMessage): Uint8Array {
  let body: Encodable;
  switch (m.t) {
    case 'start':
      body = { id: m.id, realm: m.realm, type: m.type, local: encodeNodeInfo(m.local), target: m.target?.bytes ?? null, remote: m.remoteTA?.key ?? null, token: m.token };
      break;
    case 'reply':
      body = { id: m.id, code: m.code, local: encodeNodeInfo(m.local), remote: m.remoteTA?.key ?? null, nb: m.neighbors.map(encodeInfo) };
      break;
    case 'close': body = { reason: m.reason, nb: m.neighbors.map(encodeInfo) }; break;
    case 'ping': case 'pong': body = { n: m.nonce }; break;
    case 'status': body = m.tas ? { nb: m.neighbors.map(encodeInfo), ta: m.tas.slice(0, MAX_NODEINFO_TAS).map((t) => t.key) } : { nb: m.neighbors.map(encodeInfo) }; break;
    case 'statusreq': body = null; break;
    case 'settype': body = { type: m.type }; break;
    case 'punch': body = { dial: m.dial }; break;
  }
  const out = encodeValue(body, 3);
  out[0] = PTYPE_LINK; out[1] = LINK_VERSION; out[2] = CODES.indexOf(m.t);
  return out;
}

/** Decodes a LINK packet (PType byte included). Throws WireError on malformed input. */
export function decodeLink(p: Uint8Array): LinkMessage {
  if (p.length < 4 || p[0] !== PTYPE_LINK) throw new WireError('not a link packet');
  if (p[1] !== LINK_VERSION) throw new WireError(`unsupported link version ${p[1]}`);
  const kind = CODES[p[2]!];
  if (!kind) throw new WireError(`unknown link message type ${p[2]}`);
  // Neighbour lists (`nb`) are most of a Status or reply: decoded from their bytes, through a cache.
  const { value: v, raw: nb } = decodeValueRaw(p, 3, 'nb');
  switch (kind) {
    case 'statusreq': return { t: kind };
    case 'start': {
      const m = asMap(v, 'start');
      return {
        t: kind, id: asInt(m.id ?? null, 'start.id'), realm: asString(m.realm ?? null, 'start.realm'),
        type: shortString(m.type ?? null, 'start.type'), local: decodeNodeInfo(m.local ?? null, 'start.local'),
        target: m.target == null ? undefined : addr(asBytes(m.target, 'start.target')),
        remoteTA: optTA(m.remote), token: shortString(m.token ?? '', 'start.token'),
      };
    }
    case 'reply': {
      const m = asMap(v, 'reply');
      return {
        t: kind, id: asInt(m.id ?? null, 'reply.id'), code: asInt(m.code ?? null, 'reply.code') as LinkError,
        local: decodeNodeInfo(m.local ?? null, 'reply.local'), remoteTA: optTA(m.remote),
        neighbors: decodeNodeInfoListRaw(nb, 'reply.nb'),
      };
    }
    case 'close': {
      const m = asMap(v, 'close');
      return { t: kind, reason: shortString(m.reason ?? '', 'close.reason'), neighbors: decodeNodeInfoListRaw(nb, 'close.nb') };
    }
    case 'ping': case 'pong': return { t: kind, nonce: asInt(asMap(v, kind).n ?? null, `${kind}.n`) };
    case 'status': {
      const m = asMap(v, 'status');
      const neighbors = decodeNodeInfoListRaw(nb, 'status.nb');
      if (m.ta == null) return { t: kind, neighbors };
      // Unknown TA kinds from a newer peer are skipped, as in a NodeInfo.
      // Kept as the connection's peerTAs: sliced to exactly its length (filter leaves room to grow).
      const tas = asList(m.ta, 'status.ta').slice(0, MAX_NODEINFO_TAS).map(optTA).filter((t): t is TransportAddress => !!t).slice();
      return { t: kind, neighbors, tas };
    }
    case 'settype': return { t: kind, type: shortString(asMap(v, 'settype').type ?? null, 'settype.type') };
    case 'punch': return { t: kind, dial: asBool(asMap(v, 'punch').dial ?? null, 'punch.dial') };
  }
}

function shortString(v: Value, what: string): string {
  const s = asString(v, what);
  if (s.length > 256) throw new WireError(`${what}: too long`);
  return s;
}
function addr(b: Uint8Array): Address {
  try { return Address.shared(b); } catch (e) { throw new WireError((e as Error).message); }
}
function optTA(v: Value | undefined): TransportAddress | undefined {
  if (v == null) return undefined;
  try { return TransportAddress.parse(asString(v, 'remote')); } catch { return undefined; }
}
