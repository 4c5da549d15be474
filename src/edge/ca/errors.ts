// Why a certificate, CA key or revocation list was refused (group membership by CA).

export type CertificateFailure =
  | 'malformed' | 'unsupported-version' | 'wrong-kind' | 'wrong-ca' | 'bad-signature' | 'address-mismatch'
  | 'expired' | 'not-yet-valid' | 'key-mismatch' | 'revoked' | 'stale';

/** A certificate or revocation list was refused; `reason` is the machine-readable cause. */
export class CertificateError extends Error {
  override name = 'CertificateError';
  constructor(readonly reason: CertificateFailure, message: string) { super(message); }
}
