// The <Security> section of NodeConfig: secure edges are on unless explicitly disabled.
import { ConfigError, children, parseBool, rejectUnknown, single, text, type XNode } from './xml-helpers.js';

export interface SecurityConfig {
  enabled: boolean;
  /** Group passphrase: only nodes holding it can link. */
  groupSecret?: string;
  /** File holding the group passphrase (first line), instead of putting it in the config. */
  groupSecretFile?: string;
  /** The node's key file (mode 0600); undefined = `<config file>.key`. */
  keyPath?: string;
  /** Group CA's certificate (ca.pub): when set, only members with a certificate it signed link. */
  caCertificate?: string;
  /** This node's member certificate. */
  certificate?: string;
  /** CA-signed revocation list, re-read every 2 s. */
  revocationList?: string;
}

export function parseSecurity(node: XNode | undefined): SecurityConfig {
  if (node === undefined) return { enabled: true };
  const P = 'Security';
  const { kids } = children(node, P);
  rejectUnknown(kids, ['Enabled', 'GroupSecret', 'GroupSecretFile', 'KeyPath', 'CACertificate', 'Certificate', 'RevocationList'], P);
  const get = (name: string) => {
    const n = single(kids, name, `${P}/`);
    if (n === undefined) return undefined;
    const v = text(n, `${P}/${name}`);
    if (v === '') throw new ConfigError(`${P}/${name}`, 'must not be empty');
    return v;
  };
  const en = get('Enabled');
  const cfg: SecurityConfig = { enabled: en === undefined ? true : parseBool(en, `${P}/Enabled`) };
  const gs = get('GroupSecret'), gf = get('GroupSecretFile'), kp = get('KeyPath');
  if (gs !== undefined && gf !== undefined) throw new ConfigError(`${P}/GroupSecretFile`, 'give either GroupSecret or GroupSecretFile, not both');
  if (gs !== undefined) cfg.groupSecret = gs;
  if (gf !== undefined) cfg.groupSecretFile = gf;
  if (kp !== undefined) cfg.keyPath = kp;
  const ca = get('CACertificate'), cert = get('Certificate'), rl = get('RevocationList');
  if (ca === undefined && cert !== undefined) throw new ConfigError(`${P}/Certificate`, 'needs CACertificate as well');
  if (ca === undefined && rl !== undefined) throw new ConfigError(`${P}/RevocationList`, 'needs CACertificate as well');
  if (ca !== undefined && cert === undefined) throw new ConfigError(`${P}/Certificate`, 'missing: a node needs its member certificate when CACertificate is set');
  if (ca !== undefined && !cfg.enabled) throw new ConfigError(`${P}/CACertificate`, 'cannot be used with Enabled false');
  if (ca !== undefined) cfg.caCertificate = ca;
  if (cert !== undefined) cfg.certificate = cert;
  if (rl !== undefined) cfg.revocationList = rl;
  return cfg;
}
