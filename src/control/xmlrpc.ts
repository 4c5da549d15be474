// XML-RPC codec for the local control API (Brunet's crawl.py/bget.py/bput.py
// speak it through Python's xmlrpc.client).
import { XMLParser } from 'fast-xml-parser';
import { checkWellFormed, XmlSyntaxError } from '../config/xml-wellformed.js';

export type XrValue = null | boolean | number | string | Uint8Array | XrValue[] | { [k: string]: XrValue };

/** Malformed or abusive input. */
export class XmlRpcError extends Error {
  override name = 'XmlRpcError';
}

/** A well-formed <fault> response. */
export class XmlRpcFault extends Error {
  override name = 'XmlRpcFault';
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

export const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;
export const MAX_DEPTH = 64;

type Node = Record<string, unknown>;

// Entities are decoded by us (processEntities: false): the library only
// decodes numeric references with htmlEntities on, and caps expansions.
// Tag nesting is bounded here so the depth check below never recurses deep;
// each value level costs 3 tags (value>array>data, value>struct>member).
const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: false,
  processEntities: false,
  htmlEntities: false,
  cdataPropName: '#cdata',
  ignoreDeclaration: true,
  ignorePiTags: true,
  maxNestedTags: 3 * MAX_DEPTH + 8,
});

const WS_ONLY = /^[ \t\r\n]*$/;
const INT_RE = /^[ \t\r\n]*[+-]?[0-9]+[ \t\r\n]*$/;
const DOUBLE_RE = /^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;
const NAMED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function isXmlChar(c: number): boolean {
  return c === 0x9 || c === 0xa || c === 0xd || (c >= 0x20 && c <= 0xd7ff) ||
    (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff);
}

function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&([^;&]*)(;?)/g, (_m, ref: string, semi: string) => {
    if (!semi) throw new XmlRpcError('unterminated entity reference');
    if (ref in NAMED) return NAMED[ref];
    const m = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(ref);
    if (!m) throw new XmlRpcError(`unknown entity &${ref.slice(0, 20)};`);
    const cp = m[1] !== undefined ? parseInt(m[1], 16) : parseInt(m[2], 10);
    if (!isXmlChar(cp)) throw new XmlRpcError(`character reference &${ref}; is not allowed in XML`);
    return String.fromCodePoint(cp);
  });
}

function tagOf(n: Node): string | undefined {
  for (const k of Object.keys(n)) if (k !== ':@') return k;
  return undefined;
}

function kids(n: Node, tag: string): Node[] {
  const c = n[tag];
  return Array.isArray(c) ? (c as Node[]) : [];
}

/** Child elements, rejecting any non-whitespace text between them. */
function elements(n: Node, tag: string): Node[] {
  const out: Node[] = [];
  for (const c of kids(n, tag)) {
    const t = tagOf(c);
    if (t === '#text') {
      if (!WS_ONLY.test(String(c['#text']))) throw new XmlRpcError(`unexpected text inside <${tag}>`);
    } else if (t === '#cdata') {
      throw new XmlRpcError(`unexpected CDATA inside <${tag}>`);
    } else if (t !== undefined) out.push(c);
  }
  return out;
}

/** Concatenated character data of a leaf element. */
function text(n: Node, tag: string): string {
  let s = '';
  for (const c of kids(n, tag)) {
    const t = tagOf(c);
    if (t === '#text') s += decodeEntities(String(c['#text']));
    else if (t === '#cdata') for (const d of kids(c, '#cdata')) s += String(d['#text'] ?? '');
    else if (t !== undefined) throw new XmlRpcError(`unexpected <${t}> inside <${tag}>`);
  }
  return s;
}

function only(n: Node, tag: string, want: string): Node {
  const els = elements(n, tag);
  if (els.length !== 1 || tagOf(els[0]) !== want) {
    throw new XmlRpcError(`<${tag}> must contain exactly one <${want}>`);
  }
  return els[0];
}

function parseInteger(s: string, tag: string): number {
  if (!INT_RE.test(s)) throw new XmlRpcError(`bad <${tag}> value ${JSON.stringify(s.slice(0, 40))}`);
  const v = Number(s.trim());
  if (!Number.isSafeInteger(v)) throw new XmlRpcError(`<${tag}> value out of range`);
  return v === 0 ? 0 : v; // "-0" must not become a negative zero
}

function parseDouble(s: string): number {
  const t = s.trim();
  // Python's float repr emits inf/-inf/nan.
  const special = /^([+-]?)(inf|infinity|nan)$/i.exec(t);
  if (special) {
    if (special[2].toLowerCase() === 'nan') return NaN;
    return special[1] === '-' ? -Infinity : Infinity;
  }
  if (!DOUBLE_RE.test(t)) throw new XmlRpcError(`bad <double> value ${JSON.stringify(t.slice(0, 40))}`);
  return Number(t);
}

function parseBase64(s: string): Uint8Array {
  const t = s.replace(/[ \t\r\n]+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t) || t.length % 4 === 1) throw new XmlRpcError('bad <base64> value');
  return new Uint8Array(Buffer.from(t, 'base64'));
}

function setMember(obj: { [k: string]: XrValue }, key: string, v: XrValue): void {
  // defineProperty so a "__proto__" member is data, not a prototype swap.
  Object.defineProperty(obj, key, { value: v, enumerable: true, writable: true, configurable: true });
}

function parseValue(valueNode: Node, depth: number): XrValue {
  if (depth > MAX_DEPTH) throw new XmlRpcError(`values nested deeper than ${MAX_DEPTH}`);
  // An untyped value is a string, whitespace kept.
  if (!kids(valueNode, 'value').some((c) => !String(tagOf(c)).startsWith('#'))) return text(valueNode, 'value');
  const els = elements(valueNode, 'value');
  if (els.length !== 1) throw new XmlRpcError('<value> must contain one type element');
  const el = els[0];
  const rawTag = tagOf(el)!;
  const tag = rawTag.startsWith('ex:') ? rawTag.slice(3) : rawTag; // Apache extensions
  switch (tag) {
    case 'int': case 'i4': case 'i8':
      return parseInteger(text(el, rawTag), tag);
    case 'boolean': {
      const b = text(el, rawTag).trim();
      if (b !== '0' && b !== '1') throw new XmlRpcError(`bad <boolean> value ${JSON.stringify(b.slice(0, 40))}`);
      return b === '1';
    }
    case 'string':
      return text(el, rawTag);
    case 'double':
      return parseDouble(text(el, rawTag));
    case 'base64':
      return parseBase64(text(el, rawTag));
    case 'dateTime.iso8601':
      return text(el, rawTag);
    case 'nil':
      if (elements(el, rawTag).length || text(el, rawTag).trim()) throw new XmlRpcError('<nil> must be empty');
      return null;
    case 'array': {
      const data = only(el, rawTag, 'data');
      return elements(data, 'data').map((v) => {
        if (tagOf(v) !== 'value') throw new XmlRpcError(`unexpected <${tagOf(v)}> inside <data>`);
        return parseValue(v, depth + 1);
      });
    }
    case 'struct': {
      const obj: { [k: string]: XrValue } = {};
      for (const m of elements(el, rawTag)) {
        if (tagOf(m) !== 'member') throw new XmlRpcError(`unexpected <${tagOf(m)}> inside <struct>`);
        let name: string | undefined;
        let val: Node | undefined;
        for (const c of elements(m, 'member')) {
          const t = tagOf(c);
          if (t === 'name' && name === undefined) name = text(c, 'name');
          else if (t === 'value' && val === undefined) val = c;
          else throw new XmlRpcError(`unexpected <${t}> inside <member>`);
        }
        if (name === undefined || val === undefined) throw new XmlRpcError('<member> needs a <name> and a <value>');
        setMember(obj, name, parseValue(val, depth + 1));
      }
      return obj;
    }
    default:
      throw new XmlRpcError(`unknown value type <${rawTag.slice(0, 40)}>`);
  }
}

function parseDocument(xml: string, roots: string[]): Node {
  if (typeof xml !== 'string') throw new XmlRpcError('document must be a string');
  if (xml.length > MAX_DOCUMENT_BYTES || Buffer.byteLength(xml, 'utf8') > MAX_DOCUMENT_BYTES) {
    throw new XmlRpcError(`document larger than ${MAX_DOCUMENT_BYTES} bytes`);
  }
  const body = xml.replace(/^\uFEFF/, '');
  let tree: Node[];
  try {
    // Refuses DOCTYPE (so no entity tricks), undefined entities, control characters, ...
    checkWellFormed(body, 'request');
    tree = parser.parse(body) as Node[];
  } catch (e) {
    if (e instanceof XmlSyntaxError) throw new XmlRpcError(`not well-formed XML: ${e.detail} (line ${e.line}, column ${e.column})`);
    const msg = e instanceof Error ? e.message : String(e);
    if (/nested tags/i.test(msg)) throw new XmlRpcError(`XML nested too deeply (values limited to ${MAX_DEPTH} levels)`);
    throw new XmlRpcError(`XML parse error: ${msg.slice(0, 200)}`);
  }
  if (!Array.isArray(tree)) throw new XmlRpcError('XML parse error');
  const els = tree.filter((n) => {
    const t = tagOf(n);
    if (t === '#text' && !WS_ONLY.test(String(n['#text']))) throw new XmlRpcError('text outside the root element');
    return t !== undefined && t !== '#text';
  });
  if (els.length !== 1) throw new XmlRpcError('document must have exactly one root element');
  const root = tagOf(els[0])!;
  if (!roots.includes(root)) throw new XmlRpcError(`expected <${roots.join('> or <')}>, got <${root.slice(0, 40)}>`);
  return els[0];
}

function parseParams(params: Node): XrValue[] {
  return elements(params, 'params').map((p) => {
    if (tagOf(p) !== 'param') throw new XmlRpcError(`unexpected <${tagOf(p)}> inside <params>`);
    return parseValue(only(p, 'param', 'value'), 1);
  });
}

function guard<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof XmlRpcError || e instanceof XmlRpcFault) throw e;
    throw new XmlRpcError(`malformed XML-RPC: ${String(e instanceof Error ? e.message : e).slice(0, 200)}`);
  }
}

export function parseMethodCall(xml: string): { method: string; params: XrValue[] } {
  return guard(() => {
    const root = parseDocument(xml, ['methodCall']);
    let method: string | undefined;
    let params: XrValue[] | undefined;
    for (const c of elements(root, 'methodCall')) {
      const t = tagOf(c);
      if (t === 'methodName' && method === undefined) method = text(c, t).trim();
      else if (t === 'params' && params === undefined) params = parseParams(c);
      else throw new XmlRpcError(`unexpected <${t}> inside <methodCall>`);
    }
    if (!method) throw new XmlRpcError('missing or empty <methodName>');
    return { method, params: params ?? [] };
  });
}

export function parseMethodResponse(xml: string): XrValue {
  return guard(() => {
    const root = parseDocument(xml, ['methodResponse']);
    const body = elements(root, 'methodResponse');
    if (body.length !== 1) throw new XmlRpcError('<methodResponse> must contain one <params> or <fault>');
    if (tagOf(body[0]) === 'fault') {
      const f = parseValue(only(body[0], 'fault', 'value'), 1);
      if (f === null || typeof f !== 'object' || Array.isArray(f) || f instanceof Uint8Array ||
          typeof f.faultCode !== 'number' || typeof f.faultString !== 'string') {
        throw new XmlRpcError('<fault> must be a struct with faultCode and faultString');
      }
      throw new XmlRpcFault(f.faultCode, f.faultString);
    }
    if (tagOf(body[0]) !== 'params') throw new XmlRpcError(`unexpected <${tagOf(body[0])}> inside <methodResponse>`);
    const params = parseParams(body[0]);
    if (params.length !== 1) throw new XmlRpcError('a response must carry exactly one <param>');
    return params[0];
  });
}

// Characters XML 1.0 cannot carry become U+FFFD; \r is escaped because XML
// parsers normalise a literal \r to \n.
const ESCAPE_RE = /[&<>\r\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#13;' };

function escapeXml(s: string): string {
  return s.replace(ESCAPE_RE, (c) => ESCAPES[c] ?? '\uFFFD');
}

function serializeValue(v: XrValue, depth: number, out: string[]): void {
  if (depth > MAX_DEPTH) throw new XmlRpcError(`values nested deeper than ${MAX_DEPTH} (cycle?)`);
  out.push('<value>');
  if (v === null) out.push('<nil/>');
  else if (typeof v === 'boolean') out.push(`<boolean>${v ? 1 : 0}</boolean>`);
  else if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= -0x80000000 && v <= 0x7fffffff && !Object.is(v, -0)) out.push(`<int>${v}</int>`);
    else if (Object.is(v, -0)) out.push('<double>-0.0</double>');
    // <double> cannot carry NaN/Infinity portably; a string at least survives.
    else if (Number.isFinite(v)) out.push(`<double>${v}</double>`);
    else out.push(`<string>${v}</string>`);
  } else if (typeof v === 'string') out.push(`<string>${escapeXml(v)}</string>`);
  else if (v instanceof Uint8Array) {
    out.push(`<base64>${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64')}</base64>`);
  } else if (Array.isArray(v)) {
    out.push('<array><data>');
    for (const e of v) serializeValue(e, depth + 1, out);
    out.push('</data></array>');
  } else if (typeof v === 'object') {
    out.push('<struct>');
    for (const k of Object.keys(v)) {
      const m = v[k];
      if (m === undefined) continue;
      out.push(`<member><name>${escapeXml(k)}</name>`);
      serializeValue(m, depth + 1, out);
      out.push('</member>');
    }
    out.push('</struct>');
  } else {
    throw new TypeError(`cannot serialize ${typeof v} as XML-RPC`);
  }
  out.push('</value>');
}

const DECL = '<?xml version="1.0" encoding="UTF-8"?>\n';

export function serializeResponse(value: XrValue): string {
  const out = [DECL, '<methodResponse><params><param>'];
  serializeValue(value, 1, out);
  out.push('</param></params></methodResponse>\n');
  return out.join('');
}

export function serializeFault(code: number, message: string): string {
  const out = [DECL, '<methodResponse><fault>'];
  serializeValue({ faultCode: code, faultString: message }, 1, out);
  out.push('</fault></methodResponse>\n');
  return out.join('');
}

export function serializeMethodCall(method: string, params: XrValue[]): string {
  const out = [DECL, `<methodCall><methodName>${escapeXml(method)}</methodName><params>`];
  for (const p of params) {
    out.push('<param>');
    serializeValue(p, 1, out);
    out.push('</param>\n');
  }
  out.push('</params></methodCall>\n');
  return out.join('');
}
