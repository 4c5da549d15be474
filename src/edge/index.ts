// The secure-edge layer: authenticated, encrypted edges over any EdgeListener.
export { groupKey, HandshakeError, HandshakeState, NOISE_PROTOCOL } from './handshake.js';
export { addressOf, Identity, IdentityError, loadOrCreateIdentity, verifySignature } from './identity.js';
export { SecureEdge } from './secure-edge.js';
export { HandshakeFailure, type FailureKind, type PeerInfo, type SecureStats, type VerifyPeer } from './secure-types.js';
export { SecureEdgeListener, securePrologue, type SecureListenerOptions } from './secure-listener.js';
// Simulator only: same packets, no security (see the file header).
export { NullSecureEdgeListener, type NullListenerOptions } from './null-listener.js';
