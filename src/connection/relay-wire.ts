// Wire format of relay (tunnel) frames: PTYPE_RELAY packets on an ordinary connection.
// The sender addresses the final target; the forwarder overwrites `source` with the
// address of the connection the frame arrived on (a sender's own claim is never trusted).
//
//   PType 0x03 (1) | version (1) | type (1) | target (20) | source (20)
//   | sender edge id u32 (4) | receiver edge id u32 (4, 0 = new edge) | inner packet
import { Address, ADDRESS_BYTES } from '../address/address.js';
import { WireError } from '../wire/value.js';
import { PTYPE_RELAY } from './link-wire.js';

export const RELAY_VERSION = 1;
export const RELAY_HEADER = 3 + 2 * ADDRESS_BYTES + 8;
/** data carries an inner packet; close tears the tunnel edge down (empty inner packet). */
export const enum RelayType { Data = 0, Close = 1 }
const SOURCE_OFFSET = 3 + ADDRESS_BYTES;

export interface RelayFrame {
  type: RelayType;
  target: Address;
  source: Address;
  senderId: number;
  receiverId: number;
  payload: Uint8Array;
}

export function encodeRelay(f: RelayFrame): Uint8Array {
  const out = new Uint8Array(RELAY_HEADER + f.payload.length);
  const dv = new DataView(out.buffer);
  out[0] = PTYPE_RELAY; out[1] = RELAY_VERSION; out[2] = f.type;
  out.set(f.target.bytes, 3);
  out.set(f.source.bytes, SOURCE_OFFSET);
  dv.setUint32(3 + 2 * ADDRESS_BYTES, f.senderId);
  dv.setUint32(7 + 2 * ADDRESS_BYTES, f.receiverId);
  out.set(f.payload, RELAY_HEADER);
  return out;
}

/** Decodes a RELAY packet (PType byte included); the payload is a view into p. */
export function decodeRelay(p: Uint8Array): RelayFrame {
  if (p.length < RELAY_HEADER || p[0] !== PTYPE_RELAY) throw new WireError('relay frame too short');
  if (p[1] !== RELAY_VERSION) throw new WireError(`unsupported relay version ${p[1]}`);
  const type = p[2]!;
  if (type !== RelayType.Data && type !== RelayType.Close) throw new WireError(`unknown relay frame type ${type}`);
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const senderId = dv.getUint32(3 + 2 * ADDRESS_BYTES);
  const receiverId = dv.getUint32(7 + 2 * ADDRESS_BYTES);
  if (senderId === 0) throw new WireError('relay frame with sender edge id 0');
  if (type === RelayType.Close && p.length !== RELAY_HEADER) throw new WireError('relay close frame with a payload');
  return {
    type, senderId, receiverId,
    target: Address.fromBytes(p.subarray(3, SOURCE_OFFSET)),
    source: Address.fromBytes(p.subarray(SOURCE_OFFSET, SOURCE_OFFSET + ADDRESS_BYTES)),
    payload: p.subarray(RELAY_HEADER),
  };
}

/** The forwarder stamps the true source in place (the frame was handed to it, not shared). */
export function stampSource(p: Uint8Array, source: Address): void {
  p.set(source.bytes, SOURCE_OFFSET);
}
