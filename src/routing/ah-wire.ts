// Routed ("AH") packet format, carried on edges after PType ROUTED:
//
//   0      PType ROUTED (0x02)     1  version (1)      2  mode        3  flags
//   4..5   hops (u16)              6..7  ttl (u16)
//   8..27  source address (20)     28..47 destination address (20)
//   48     payload type            49..   payload
//
// Modes keep Brunet's numbers where they exist: 0 closest (both nodes bracketing the
// destination), 3 greedy, 5 exact; 6 is the final leg of a closest delivery.
import { Address, ADDRESS_BYTES } from '../address/address.js';
import { PTYPE_ROUTED } from '../connection/link-wire.js';
import type { Room } from '../transport/edge.js';
import { WireError } from '../wire/value.js';
import { uninitialized } from '../util/bytes.js';

export const AH_VERSION = 1;
export const AH_HEADER = 49;
export const enum Mode { Closest = 0, Greedy = 3, Exact = 5, ClosestFinal = 6 }
const MODES = new Set([0, 3, 5, 6]);
/** Flag: the packet was sent over a single edge; replies go back over the same edge. */
export const FLAG_EDGE = 1;

/** Payload types above routing. */
export const enum Payload {
  Rpc = 1,
  /** An Ethernet frame carrying IP, for the VPN (its MACs are rewritten on arrival). */
  Ip = 2,
  /** The same after a 10-byte offload header: a TCP super-packet or a partial checksum (vpn/offload.ts). */
  IpOffload = 3,
  /** Switch mode: an Ethernet frame as the bridge gave it (any EtherType; MACs kept). */
  Ethernet = 4,
  /** The same after a 10-byte offload header. */
  EthernetOffload = 5,
  /** SocialVPN: an Ethernet frame carrying IPv4, addresses already translated to the receiver's view (vpn/social/). */
  SocialIp = 6,
  /** SocialVPN: a hello between two friends' devices (vpn/social/wire.ts). */
  SocialControl = 7,
  /** SocialVPN: SocialIp after a 10-byte offload header (a translated TCP super-packet or partial checksum). */
  SocialIpOffload = 8,
}

export interface AhHeader {
  mode: Mode;
  flags: number;
  hops: number;
  ttl: number;
  src: Address;
  dst: Address;
  ptype: number;
}

export function encodeAh(h: AhHeader, payload: Uint8Array): Uint8Array {
  const out = uninitialized(AH_HEADER + payload.length); // every byte is written below
  writeAhHeader(h, out);
  out.set(payload, AH_HEADER);
  return out;
}

/**
 * encodeAh without the copy: writes the header into the `room.head` bytes in front of payload
 * (which the caller owns, see Room) and returns the packet as a view over payload's buffer,
 * AH_HEADER bytes before it; undefined when the room is too small (then use encodeAh).
 */
export function encodeAhInRoom(h: AhHeader, payload: Uint8Array, room: Room): Uint8Array | undefined {
  if (room.head < AH_HEADER || payload.byteOffset < AH_HEADER) return undefined;
  const out = new Uint8Array(payload.buffer, payload.byteOffset - AH_HEADER, AH_HEADER + payload.length);
  writeAhHeader(h, out);
  return out;
}

function writeAhHeader(h: AhHeader, out: Uint8Array): void {
  out[0] = PTYPE_ROUTED; out[1] = AH_VERSION; out[2] = h.mode; out[3] = h.flags;
  out[4] = (h.hops >>> 8) & 0xff; out[5] = h.hops & 0xff; out[6] = (h.ttl >>> 8) & 0xff; out[7] = h.ttl & 0xff;
  out.set(h.src.bytes, 8); out.set(h.dst.bytes, 8 + ADDRESS_BYTES);
  out[48] = h.ptype;
}

export function decodeAh(p: Uint8Array): AhHeader {
  if (p.length < AH_HEADER) throw new WireError(`routed packet too short (${p.length} bytes)`);
  if (p[0] !== PTYPE_ROUTED) throw new WireError('not a routed packet');
  if (p[1] !== AH_VERSION) throw new WireError(`unsupported routing version ${p[1]}`);
  if (!MODES.has(p[2]!)) throw new WireError(`unknown routing mode ${p[2]}`);
  const v = new DataView(p.buffer, p.byteOffset, p.byteLength);
  return {
    mode: p[2] as Mode, flags: p[3]!, hops: v.getUint16(4), ttl: v.getUint16(6),
    // Shared (interned by their bytes): routing looks dst up by its text key, which a fresh
    // Address would build per packet, and the same few peers' addresses arrive over and over.
    src: Address.shared(p.subarray(8, 28)), dst: Address.shared(p.subarray(28, 48)), ptype: p[48]!,
  };
}

/** Rewrites hops (and mode) in place before forwarding: no copy on the forwarding path. */
export function bumpHops(p: Uint8Array, hops: number, mode?: Mode): void {
  p[4] = hops >>> 8; p[5] = hops & 0xff;
  if (mode !== undefined) p[2] = mode;
}
