// Revocation enforcement for CA group membership (see ca/crl.ts for the list format).
//
// RevocationWatcher keeps the current CA-signed revocation list of a file: it polls the
// file (every 2 s by default) and also watches its directory (fs.watch) so a new list is
// usually picked up within milliseconds. A file that does not verify (bad signature,
// other CA, corrupt, half written) or that is older than the loaded list is rejected with
// a logged reason and the previous list stays in force. Writers should replace the file
// atomically (write a temp file, rename), as brunet-ca does.
//
// enforceRevocations() closes every established secure edge (as listed by
// SecureEdgeListener.establishedEdges()) whose peer is revoked (by certificate serial or
// by key) and, given `now`, whose certificate has expired. New handshakes are refused by
// membershipVerifier reading `watcher.revoked`.
import fs from 'node:fs';
import path from 'node:path';
import type { Clock, TimerHandle } from '../util/clock.js';
import { silentLogger, type Logger } from '../util/log.js';
import { decodeCertificate, formatSerial } from './ca/certificate.js';
import { isRevoked, type Revoked, type RevocationList } from './ca/crl.js';
import { CertificateError } from './ca/errors.js';
import { verifyRevocations } from './ca/verify.js';
import type { SecureEdge } from './secure-edge.js';
import type { SecureEdgeListener } from './secure-listener.js';

export const DEFAULT_REVOCATION_POLL_MS = 2000;
const WATCH_DEBOUNCE_MS = 25;

export const EMPTY_REVOCATION_LIST: RevocationList = Object.freeze({
  caKeyId: new Uint8Array(8), issuedAt: -1, serials: new Set<bigint>(), keys: new Set<string>(),
});

export interface RevocationWatcherOptions {
  file: string;
  caPublicKey: Uint8Array;
  clock: Clock;
  log?: Logger;
  /** Poll period; default 2000 ms. */
  pollMs?: number;
  /** Also use fs.watch on the file's directory; default true. The poll runs regardless. */
  watch?: boolean;
  /** Called with each newly accepted list (not for the one loaded by start()). */
  onChange?: (list: RevocationList) => void;
}

export class RevocationWatcher {
  private list: RevocationList = EMPTY_REVOCATION_LIST;
  private lastStat: string | undefined;
  private timer: TimerHandle | undefined;
  private debounce: TimerHandle | undefined;
  private watcher: fs.FSWatcher | undefined;
  private readonly log: Logger;
  /** Lists rejected since start (for diagnostics and tests). */
  rejected = 0;

  constructor(private readonly o: RevocationWatcherOptions) {
    this.log = o.log ?? silentLogger;
  }

  /** The list in force (empty until a valid file is loaded). */
  get current(): RevocationList { return this.list; }

  /** For membershipVerifier({ revocations: watcher.revoked }). */
  readonly revoked = (): Revoked => this.list;

  /**
   * Loads the file and starts watching. A missing file counts as an empty list (it is
   * picked up once it appears); a file that is present but does not verify throws
   * CertificateError, so a node never starts with a broken revocation list.
   */
  start(): RevocationList {
    if (this.timer) return this.list;
    const r = this.load();
    if (r.error) throw new CertificateError(r.error.reason, `revocation list ${this.o.file}: ${r.error.message}`);
    if (r.missing) this.log.warn(`revocation list ${this.o.file} does not exist yet; no member is revoked until it appears`);
    this.timer = this.o.clock.setInterval(() => this.check(), this.o.pollMs ?? DEFAULT_REVOCATION_POLL_MS);
    if (this.o.watch !== false) {
      const base = path.basename(this.o.file);
      try {
        this.watcher = fs.watch(path.dirname(this.o.file), { persistent: false }, (_ev, name) => {
          if (name !== null && name !== base) return;
          this.debounce?.cancel();
          this.debounce = this.o.clock.setTimeout(() => { this.debounce = undefined; this.check(); }, WATCH_DEBOUNCE_MS);
        });
        this.watcher.on('error', () => { this.watcher?.close(); this.watcher = undefined; });
      } catch (e) {
        this.log.debug(`fs.watch unavailable for ${this.o.file} (${(e as Error).message}); polling only`);
      }
    }
    return this.list;
  }

  stop(): void {
    this.timer?.cancel();
    this.debounce?.cancel();
    this.watcher?.close();
    this.timer = this.debounce = this.watcher = undefined;
  }

  /** Re-reads the file if it changed; true if a new list was accepted. */
  check(): boolean {
    const r = this.load();
    if (r.error) {
      this.rejected++;
      this.log.warn(`revocation list ${this.o.file} rejected, keeping the previous one (issued ${this.issued()}): ${r.error.message}`);
      return false;
    }
    if (!r.accepted) return false;
    this.log.info(`revocation list ${this.o.file} loaded: ${this.list.serials.size} serials, ${this.list.keys.size} keys revoked (issued ${this.issued()})`);
    try { this.o.onChange?.(this.list); } catch (e) { this.log.error(`revocation onChange: ${(e as Error).message}`); }
    return true;
  }

  private issued(): string {
    return this.list.issuedAt < 0 ? 'never' : new Date(this.list.issuedAt).toISOString();
  }

  private load(): { accepted?: boolean; missing?: boolean; error?: CertificateError } {
    let st: fs.Stats;
    try { st = fs.statSync(this.o.file); } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        if (this.lastStat !== 'missing' && this.list !== EMPTY_REVOCATION_LIST) {
          this.log.warn(`revocation list ${this.o.file} disappeared; keeping the one issued ${this.issued()}`);
        }
        this.lastStat = 'missing';
        return { missing: true };
      }
      const code = `error:${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
      if (code === this.lastStat) return {}; // reported already
      this.lastStat = code;
      return { error: new CertificateError('malformed', `cannot read: ${(e as Error).message}`) };
    }
    const sig = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    if (sig === this.lastStat) return {};
    this.lastStat = sig;
    let next: RevocationList;
    try {
      next = verifyRevocations(new Uint8Array(fs.readFileSync(this.o.file)), this.o.caPublicKey);
    } catch (e) {
      if (e instanceof CertificateError) return { error: e };
      return { error: new CertificateError('malformed', `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`) };
    }
    const cur = this.list;
    if (next.issuedAt < cur.issuedAt) {
      return { error: new CertificateError('stale', `issued ${new Date(next.issuedAt).toISOString()}, before the list in force`) };
    }
    if (next.issuedAt === cur.issuedAt) {
      if (sameRevoked(next, cur)) return {};
      return { error: new CertificateError('stale', 'same issue time as the list in force but different contents') };
    }
    this.list = next;
    return { accepted: true };
  }
}

function sameRevoked(a: Revoked, b: Revoked): boolean {
  if (a.serials.size !== b.serials.size || a.keys.size !== b.keys.size) return false;
  for (const s of a.serials) if (!b.serials.has(s)) return false;
  for (const k of a.keys) if (!b.keys.has(k)) return false;
  return true;
}

export interface EnforceOptions {
  /** If given, edges whose peer certificate has expired by then are closed too. */
  now?: number;
  log?: Logger;
}

/**
 * Closes every established edge of `listeners` whose peer is revoked (certificate serial
 * or key) or, with `now`, whose certificate has expired. Returns the edges it closed.
 */
export function enforceRevocations(listeners: Iterable<SecureEdgeListener>, revoked: Revoked, o: EnforceOptions = {}): SecureEdge[] {
  const closed: SecureEdge[] = [];
  const log = o.log ?? silentLogger;
  for (const l of listeners) {
    for (const e of l.establishedEdges()) {
      const peer = e.peer;
      let serial: bigint | undefined;
      let notAfter: number | undefined;
      let name = '';
      if (peer.certificate) {
        try {
          const c = decodeCertificate(peer.certificate);
          serial = c.serial; notAfter = c.notAfter; name = c.name;
        } catch { /* verifyPeer accepted it, so it decodes; without a CA there is nothing to check */ }
      }
      let why: string | undefined;
      if (isRevoked(revoked, serial, peer.publicKey)) {
        why = `member revoked (${name || peer.address.toString()}${serial !== undefined ? `, serial ${formatSerial(serial)}` : ''})`;
      } else if (o.now !== undefined && notAfter !== undefined && o.now >= notAfter) {
        why = `member certificate expired (${name || peer.address.toString()})`;
      }
      if (why === undefined) continue;
      log.warn(`closing secure edge ${e.id} to ${peer.address}: ${why}`);
      e.close(why);
      closed.push(e);
    }
  }
  return closed;
}
