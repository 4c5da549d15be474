// Turns NodeConfig's <Security> into what the secure edge layer needs: the node identity
// (its key file), the group key, and a wrapper for each raw listener.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { NodeConfig } from '../config/node-config.js';
import { ConfigError } from '../config/node-config.js';
import { groupKey, Identity, loadOrCreateIdentity, SecureEdgeListener } from '../edge/index.js';
import { readCertificateFile } from '../edge/ca/certificate.js';
import { NO_REVOCATIONS } from '../edge/ca/crl.js';
import { CertificateError } from '../edge/ca/errors.js';
import { checkOwnCertificate, loadCaCertificate, membershipVerifier } from '../edge/ca/verify.js';
import { enforceRevocations, RevocationWatcher } from '../edge/revocation.js';
import type { TimerHandle } from '../util/clock.js';
import type { EdgeListener } from '../transport/edge.js';
import { realClock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { cryptoRandom } from '../util/random.js';

export interface Membership {
  caPublicKey: Uint8Array;
  certificate: Uint8Array;
  watcher?: RevocationWatcher;
  listeners: SecureEdgeListener[];
  expiryTimer?: TimerHandle;
}

export interface SecurityContext { groupKey: Uint8Array; firstIdentity: Identity; membership?: Membership; stop(): void }

export function securityContext(cfg: NodeConfig, log: Logger): SecurityContext | undefined {
  const s = cfg.security;
  if (!s.enabled) {
    log.warn('Security/Enabled is false: edges are neither authenticated nor encrypted');
    return undefined;
  }
  const base = cfg.source ? dirname(resolve(cfg.source)) : process.cwd();
  let secret = s.groupSecret;
  if (s.groupSecretFile) {
    const f = resolve(base, s.groupSecretFile);
    try { secret = readFileSync(f, 'utf8').split('\n')[0]!.trim(); } catch (e) {
      throw new ConfigError('Security/GroupSecretFile', `cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    if (!secret) throw new ConfigError('Security/GroupSecretFile', `${f} is empty`);
  }
  if (!secret) {
    log.warn('no Security/GroupSecret: links are encrypted, but any node that knows the namespace can join');
    secret = `brunet-namespace:${cfg.namespace}`;
  }
  const keyFile = s.keyPath ? resolve(base, s.keyPath) : cfg.source ? `${resolve(cfg.source)}.key` : undefined;
  const firstIdentity = keyFile ? loadOrCreateIdentity(keyFile) : Identity.generate();
  const membership = s.caCertificate ? loadMembership(cfg, base, firstIdentity, keyFile, log) : undefined;
  return {
    groupKey: groupKey(secret, cfg.namespace), firstIdentity, membership,
    stop() { membership?.watcher?.stop(); membership?.expiryTimer?.cancel(); },
  };
}

/** Group CA mode: our own certificate must be valid, and revoked peers are cut off. */
function loadMembership(cfg: NodeConfig, base: string, id: Identity, keyFile: string | undefined, log: Logger): Membership {
  const s = cfg.security;
  const field = (name: string, f: () => Uint8Array | { publicKey: Uint8Array }) => {
    try { return f(); } catch (e) {
      if (e instanceof CertificateError) throw new ConfigError(`Security/${name}`, e.message);
      throw e;
    }
  };
  const ca = field('CACertificate', () => loadCaCertificate(resolve(base, s.caCertificate!))) as { publicKey: Uint8Array };
  const certificate = field('Certificate', () => {
    const c = readCertificateFile(resolve(base, s.certificate!));
    try { checkOwnCertificate(c, ca.publicKey, id.publicKey, Date.now()); } catch (e) {
      if (e instanceof CertificateError) throw new CertificateError(e.reason, `${e.message} (sign this node's key with: brunet-ca sign --dir CA_DIR --key ${keyFile ?? 'KEY_FILE'} --name NAME --out ${s.certificate})`);
      throw e;
    }
    return c;
  }) as Uint8Array;
  const m: Membership = { caPublicKey: ca.publicKey, certificate, listeners: [] };
  if (s.revocationList) {
    m.watcher = new RevocationWatcher({
      file: resolve(base, s.revocationList), caPublicKey: ca.publicKey, clock: realClock, log,
      onChange: (list) => { enforceRevocations(m.listeners, list, { now: Date.now(), log }); },
    });
    try { m.watcher.start(); } catch (e) { throw new ConfigError('Security/RevocationList', (e as Error).message); }
  }
  // Certificates expire on links that are already up, too.
  m.expiryTimer = realClock.setInterval(() => enforceRevocations(m.listeners, m.watcher?.current ?? NO_REVOCATIONS, { now: Date.now(), log }), 60_000);
  return m;
}

export function secureListener(inner: EdgeListener, identity: Identity, ctx: SecurityContext, cfg: NodeConfig, log: Logger): EdgeListener {
  const m = ctx.membership;
  const l = new SecureEdgeListener(inner, {
    identity, groupKey: ctx.groupKey, namespace: cfg.namespace, clock: realClock, random: cryptoRandom, log,
    certificate: m?.certificate, rekeyAfterPackets: rekeyPacketsFromEnv(),
    verifyPeer: m ? membershipVerifier({ caPublicKey: m.caPublicKey, clock: realClock, revocations: m.watcher?.revoked }) : undefined,
  });
  if (m) m.listeners.push(l);
  return l;
}

/** Tests only: BRUNET_REKEY_PACKETS=N rekeys every secure edge's send direction after N packets. */
function rekeyPacketsFromEnv(): number | undefined {
  const n = Number(process.env['BRUNET_REKEY_PACKETS']);
  return Number.isInteger(n) && n >= 1 ? n : undefined;
}
