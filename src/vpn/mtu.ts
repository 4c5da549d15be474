// The TAP's MTU: a full-size VPN packet, with every header the overlay adds, must fit the
// underlay path without IP fragmentation, over IPv4 or IPv6. The underlay's MTU is that of the
// interface the overlay uses (underlay.ts), at most 1500: the overlay's UDP datagrams are sized
// for 1500-byte paths, so a larger one gains nothing.
import { AH_HEADER } from '../routing/ah-wire.js';
import { DATA_HEADER } from '../edge/secure-wire.js';
import { UDP_HEADER as OVERLAY_UDP_HEADER } from '../transport/udp.js';
import { ETH_HEADER } from './frames.js';
import { OFFLOAD_HEADER } from './offload.js';

export const UNDERLAY_MTU = 1500;
const IPV6_UDP = 40 + 8; // the larger of the underlay's IPv4 (20) and IPv6 (40) headers, plus UDP
const AEAD_TAG = 16;

/**
 * Bytes the overlay adds around an IP packet on a UDP edge: 137 over IPv4, 157 over IPv6.
 * A single TCP segment with a partial checksum carries the offload header too.
 */
export const VPN_OVERHEAD = IPV6_UDP + OVERLAY_UDP_HEADER + DATA_HEADER + AEAD_TAG + AH_HEADER + OFFLOAD_HEADER + ETH_HEADER;

/** 1343 rounded down to a multiple of 8 = 1336, unless configured. */
export const DEFAULT_VPN_MTU = Math.floor((UNDERLAY_MTU - VPN_OVERHEAD) / 8) * 8;

/** The TAP's MTU over an underlay interface of `underlayMtu` (capped at 1500: see MAX_DATAGRAM). */
export function mtuOver(underlayMtu: number): number {
  return Math.floor((Math.min(underlayMtu, UNDERLAY_MTU) - VPN_OVERHEAD) / 8) * 8;
}

/** The TAP's MTU: the configured one, else the one over the underlay interface (1500 when unknown). */
export function vpnMtu(configured: number, underlay?: { mtu: number }): number {
  return configured > 0 ? configured : underlay ? mtuOver(underlay.mtu) : DEFAULT_VPN_MTU;
}
