// Turns NodeConfig's <Security> into what the secure edge layer needs: the node identity
// (its key file), the group key, and a wrapper for each raw listener.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { NodeConfig } from '../config/node-config.js';
import { ConfigError } from '../config/node-config.js';
import { groupKey, Identity, loadOrCreateIdentity, SecureEdgeListener } from '../edge/index.js';
import type { EdgeListener } from '../transport/edge.js';
import { realClock } from '../util/clock.js';
import type { Logger } from '../util/log.js';
import { cryptoRandom } from '../util/random.js';

export interface SecurityContext { groupKey: Uint8Array; firstIdentity: Identity }

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
  return { groupKey: groupKey(secret, cfg.namespace), firstIdentity };
}

export function secureListener(inner: EdgeListener, identity: Identity, ctx: SecurityContext, cfg: NodeConfig, log: Logger): EdgeListener {
  return new SecureEdgeListener(inner, { identity, groupKey: ctx.groupKey, namespace: cfg.namespace, clock: realClock, random: cryptoRandom, log });
}
