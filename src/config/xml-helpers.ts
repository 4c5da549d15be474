// Strict XML helpers for config files: every element an array (duplicates detectable),
// values kept as strings (validation and its messages are ours), one-line errors.
import { XMLParser } from 'fast-xml-parser';

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly reason: string;
  constructor(readonly element: string, reason: string) {
    // Keep it one line even if a wrapped message (e.g. from a parser) had newlines.
    const r = reason.replace(/\s*\n\s*/g, ' ');
    super(`${element}: ${r}`);
    this.reason = r;
  }
}

// Every element becomes an array so duplicates of single-valued elements are detectable,
// and values stay strings so validation (and its messages) is ours.
export const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  trimValues: true,
  isArray: (_name, _jpath, _leaf, isAttribute) => isAttribute !== true,
});

export type XNode = string | { [k: string]: unknown };
export type XChildren = Record<string, XNode[]>;

/** Namespace declarations (XmlSerializer writes xmlns:xsi/xsd) carry no configuration. */
const ignorableAttr = (k: string): boolean => /^@_(xmlns(:|$)|xsi:)/.test(k);

/** Splits an element into its attributes and child elements, rejecting stray text. */
export function children(node: XNode, path: string, allowedAttrs: readonly string[] = []): { attrs: Record<string, string>; kids: XChildren } {
  const attrs: Record<string, string> = {};
  const kids: XChildren = {};
  if (typeof node === 'string') {
    if (node !== '') throw new ConfigError(path, `expected child elements, found text ${JSON.stringify(node)}`);
    return { attrs, kids };
  }
  for (const [k, v] of Object.entries(node)) {
    if (k === '#text') {
      if (String(v).trim() !== '') throw new ConfigError(path, `unexpected text ${JSON.stringify(v)}`);
    } else if (k.startsWith('@_')) {
      if (allowedAttrs.includes(k.slice(2))) attrs[k.slice(2)] = String(v);
      else if (!ignorableAttr(k)) throw new ConfigError(path, `unknown attribute "${k.slice(2)}"`);
    } else {
      kids[k] = v as XNode[];
    }
  }
  return { attrs, kids };
}

export function rejectUnknown(kids: XChildren, known: readonly string[], path: string): void {
  for (const k of Object.keys(kids)) {
    if (!known.includes(k)) throw new ConfigError(`${path}/${k}`, `unknown element (expected one of: ${known.join(', ')})`);
  }
}

/** Text content of a leaf element; a nested element or attribute is an error. */
export function text(node: XNode, path: string): string {
  if (typeof node === 'string') return node;
  const { kids } = children({ ...node, '#text': '' }, path);
  const k = Object.keys(kids)[0];
  if (k !== undefined) throw new ConfigError(`${path}/${k}`, 'unknown element (expected text only)');
  return String(node['#text'] ?? '').trim();
}

/** The one occurrence of a single-valued element, or undefined if absent. */
export function single(kids: XChildren, name: string, path: string): XNode | undefined {
  const v = kids[name];
  if (v === undefined) return undefined;
  if (v.length > 1) throw new ConfigError(`${path}${name}`, `appears ${v.length} times, expected at most once`);
  return v[0];
}

export function parsePort(s: string, path: string, min: number): number {
  if (!/^[+-]?\d+$/.test(s)) throw new ConfigError(path, `port must be an integer, got ${JSON.stringify(s)}`);
  const n = Number(s);
  if (n < min || n > 65535) throw new ConfigError(path, `port ${s} out of range ${min}..65535`);
  return n;
}

export function parseBool(s: string, path: string): boolean {
  const t = s.toLowerCase();
  if (t === 'true' || t === '1') return true;
  if (t === 'false' || t === '0') return false;
  throw new ConfigError(path, `expected true or false, got ${JSON.stringify(s)}`);
}

/** A whole number in [min, max] from an element's text. */
export function int(node: XNode, path: string, min: number, max: number): number {
  const s = text(node, path);
  if (!/^\d+$/.test(s)) throw new ConfigError(path, `expected a whole number, got ${JSON.stringify(s)}`);
  const n = Number(s);
  if (n < min || n > max) throw new ConfigError(path, `${n} out of range ${min}..${max}`);
  return n;
}
