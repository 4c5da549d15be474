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
}

export function parseSecurity(node: XNode | undefined): SecurityConfig {
  if (node === undefined) return { enabled: true };
  const P = 'Security';
  const { kids } = children(node, P);
  rejectUnknown(kids, ['Enabled', 'GroupSecret', 'GroupSecretFile', 'KeyPath'], P);
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
  return cfg;
}
