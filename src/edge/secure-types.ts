// Types shared by SecureEdge and SecureEdgeListener: the authenticated peer, the
// admission hook, failure kinds and the counters Information.Info and tests read.
// (What a SecureEdge needs from its listener, SecureEdgeHost, is in secure-edge.ts.)
import type { Address } from '../address/address.js';
import { newSessionStats, type SessionStats } from './session.js';

export interface PeerInfo {
  readonly address: Address;
  /** Raw Ed25519 public key (32 bytes). */
  readonly publicKey: Uint8Array;
  /** Opaque certificate the peer presented, if any. */
  readonly certificate?: Uint8Array;
}

/** null accepts the peer; a string refuses it, with that reason. */
export type VerifyPeer = (info: PeerInfo) => string | null;

export type FailureKind = 'timeout' | 'auth' | 'identity' | 'refused' | 'refused-by-peer' | 'protocol' | 'closed';

/** Why createEdge() rejected; `kind` is the stats bucket. */
export class HandshakeFailure extends Error {
  override name = 'HandshakeFailure';
  constructor(message: string, readonly kind: FailureKind) { super(message); }
}

export interface SecureStats extends SessionStats {
  handshakesOk: number;
  /** Failed handshakes by FailureKind. */
  handshakesFailed: Record<string, number>;
  /** Stateless RETRY (cookie) replies sent to HELLOs without a valid cookie. */
  retriesSent: number;
  /** HELLOs whose cookie was stale or forged. */
  cookiesInvalid: number;
  /** Handshake messages sent again (timer or duplicate from the peer). */
  retransmits: number;
  /** Every packet received / sent on wrapped edges, handshake and transport. */
  packetsIn: number;
  packetsOut: number;
  /** send() while not established or after close. */
  sendErrors: number;
  /** Exceptions thrown by onEdge/onPacket/onClose (swallowed). */
  handlerErrors: number;
}

export function newSecureStats(): SecureStats {
  return {
    handshakesOk: 0, handshakesFailed: {}, retriesSent: 0, cookiesInvalid: 0, retransmits: 0,
    packetsIn: 0, packetsOut: 0, sendErrors: 0, handlerErrors: 0, ...newSessionStats(),
  };
}
