// Limits shared by the DHT client, server and tools; each is configurable per node.
export interface DhtLimits {
  /** Largest value in bytes (Brunet: 1 KB). */
  maxValueBytes: number;
  /** Largest key in bytes. */
  maxKeyBytes: number;
  /** TTLs above this many seconds are cut down to it. */
  maxTtl: number;
  /** Replicas per key. */
  degree: number;
  /** How often a holder checks that each key's next replica point still has the value. */
  repairMs: number;
}

export const DEFAULT_DHT_LIMITS: DhtLimits = { maxValueBytes: 1024, maxKeyBytes: 256, maxTtl: 7 * 86400, degree: 8, repairMs: 300_000 };

export class DhtError extends Error {
  override name = 'DhtError';
  constructor(message: string, readonly counts?: { total: number; positive: number; negative: number }) {
    super(counts ? `${message} (replicas: ${counts.total} asked, ${counts.positive} agreed, ${counts.negative} refused or failed${counts.positive + counts.negative < counts.total ? ', the rest not awaited' : ''})` : message);
  }
}

/** Validates a client request; the message is what the user sees. */
export function checkRequest(key: Uint8Array, value: Uint8Array | undefined, ttl: number | undefined, l: DhtLimits): void {
  if (key.length === 0) throw new DhtError('the key is empty');
  if (key.length > l.maxKeyBytes) throw new DhtError(`the key is ${key.length} bytes; the limit is ${l.maxKeyBytes}`);
  if (value && value.length > l.maxValueBytes) throw new DhtError(`the value is ${value.length} bytes; the limit is ${l.maxValueBytes}`);
  if (ttl !== undefined && (!Number.isInteger(ttl) || ttl <= 0)) throw new DhtError(`the TTL must be a positive whole number of seconds, got ${ttl}`);
}
