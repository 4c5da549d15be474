// Well-formedness of every XML input (configs, DHCPConfig from the DHT, XML-RPC bodies),
// checked before anything is read from it. fast-xml-parser's XMLValidator accepts "--" in
// comments, undefined entities, control characters, '<' and '&' in attribute values, "]]>"
// in text, several roots and DTDs; this scanner refuses all of those (and any DOCTYPE, so
// no entity can be defined), then the validator checks the rest.
import { XMLValidator } from 'fast-xml-parser';
import { readBoundedSync, TooLargeError } from '../util/bounded-read.js';
import { ConfigError, parser, type XChildren } from './xml-helpers.js';

/** Configs are a few KB; anything over this is the wrong file (or /dev/zero). */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** Not well-formed: names the source, line and column (1-based, in characters). */
export class XmlSyntaxError extends ConfigError {
  constructor(readonly source: string, readonly line: number, readonly column: number, readonly detail: string) {
    super(`${source}:${line}:${column}`, `not well-formed XML: ${detail}`);
  }
}

const BAD_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const S = '[ \\t\\r\\n]';
const NAME = '[A-Za-z_:\\u00C0-\\uFFFF][A-Za-z0-9_:.\\-\\u00B7\\u00C0-\\uFFFF]*';
const START_TAG = new RegExp(`<(${NAME})`, 'y');
const ATTR = new RegExp(`${S}+(${NAME})${S}*=${S}*("[^"]*"|'[^']*')`, 'y');
const TAG_END = new RegExp(`${S}*(/?)>`, 'y');
const END_TAG = new RegExp(`</(${NAME})${S}*>`, 'y');
const PI_TARGET = new RegExp(`(${NAME})(?:${S}|\\?>)`, 'y');
const XML_DECL = new RegExp(`<\\?xml${S}+version${S}*=${S}*(?:"1\\.[0-9]+"|'1\\.[0-9]+')` +
  `(?:${S}+encoding${S}*=${S}*(?:"([A-Za-z][A-Za-z0-9._-]*)"|'([A-Za-z][A-Za-z0-9._-]*)'))?` +
  `(?:${S}+standalone${S}*=${S}*(?:"(?:yes|no)"|'(?:yes|no)'))?${S}*\\?>`, 'y');
const REF = /&(?:([A-Za-z_:][A-Za-z0-9_:.-]*)|#([0-9]+)|#x([0-9a-fA-F]+));/y;
const PREDEFINED = new Set(['lt', 'gt', 'amp', 'quot', 'apos']);
const WS = /^[ \t\r\n]*$/;

function isXmlChar(c: number): boolean {
  return c === 0x9 || c === 0xa || c === 0xd || (c >= 0x20 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) || (c >= 0x10000 && c <= 0x10ffff);
}

function position(s: string, at: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let i = s.indexOf('\n'); i !== -1 && i < at; i = s.indexOf('\n', i + 1)) { line++; start = i + 1; }
  return { line, column: [...s.slice(start, at)].length + 1 };
}

/** UTF-8 bytes to text, refusing invalid sequences (with their position); a BOM is dropped. */
export function decodeXml(bytes: Uint8Array, source: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    // Locate the first bad byte: the longest prefix that decodes as a stream (a character
    // cut off at the end of a prefix is not an error there, so this is a clean bisection).
    const ok = (n: number): boolean => {
      try { new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, n), { stream: true }); return true; } catch { return false; }
    };
    let lo = 0;
    let hi = bytes.length;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (ok(mid)) lo = mid; else hi = mid - 1; }
    const prefix = new TextDecoder('utf-8').decode(bytes.subarray(0, lo), { stream: true });
    const { line, column } = position(prefix, prefix.length);
    throw new XmlSyntaxError(source, line, column, `invalid UTF-8 (byte ${lo})`);
  }
}

/** Throws XmlSyntaxError unless `xml` (without a BOM) is a well-formed document with one root. */
export function checkWellFormed(xml: string, source: string): void {
  const fail = (at: number, detail: string): never => {
    const { line, column } = position(xml, at);
    throw new XmlSyntaxError(source, line, column, detail);
  };
  const bad = BAD_CHAR.exec(xml);
  if (bad) fail(bad.index, `character U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')} is not allowed in XML`);

  const refs = (from: number, to: number, where: string): void => {
    for (let i = xml.indexOf('&', from); i !== -1 && i < to; i = xml.indexOf('&', i + 1)) {
      REF.lastIndex = i;
      const m = REF.exec(xml);
      if (!m || REF.lastIndex > to) fail(i, `bare '&' in ${where} (write &amp;)`);
      if (m![1] !== undefined && !PREDEFINED.has(m![1])) fail(i, `undefined entity &${m![1]}; (only &lt; &gt; &amp; &quot; &apos; exist without a DTD)`);
      if (m![1] === undefined) {
        const cp = m![2] !== undefined ? Number(m![2]) : parseInt(m![3]!, 16);
        if (!isXmlChar(cp)) fail(i, `character reference ${m![0]} is not allowed in XML`);
      }
    }
  };

  const stack: Array<{ name: string; at: number }> = [];
  let rootDone = false;
  let i = 0;
  const n = xml.length;
  while (i < n) {
    const lt = xml.indexOf('<', i);
    const end = lt === -1 ? n : lt;
    if (end > i) {
      if (stack.length === 0) {
        const t = xml.slice(i, end);
        if (!WS.test(t)) fail(i + t.search(/[^ \t\r\n]/), rootDone ? 'text after the root element' : 'text before the root element');
      } else {
        const cd = xml.indexOf(']]>', i);
        if (cd !== -1 && cd < end) fail(cd, "']]>' is not allowed in text (write ]]&gt;)");
        refs(i, end, 'text');
      }
    }
    if (lt === -1) break;
    if (xml.startsWith('<!--', lt)) {
      const close = xml.indexOf('-->', lt + 4);
      if (close === -1) fail(lt, 'comment is not closed with -->');
      if (close > lt + 4 && xml[close - 1] === '-') fail(close - 1, "comment ends in '--->'");
      const dd = xml.indexOf('--', lt + 4);
      if (dd < close) fail(dd, "'--' inside a comment");
      i = close + 3;
    } else if (xml.startsWith('<![CDATA[', lt)) {
      if (stack.length === 0) fail(lt, 'CDATA section outside the root element');
      const close = xml.indexOf(']]>', lt + 9);
      if (close === -1) fail(lt, 'CDATA section is not closed with ]]>');
      i = close + 3;
    } else if (xml.startsWith('<!DOCTYPE', lt)) {
      fail(lt, 'DOCTYPE is not allowed');
    } else if (xml.startsWith('<!', lt)) {
      fail(lt, "markup declarations ('<!') are not allowed");
    } else if (xml.startsWith('<?', lt)) {
      const close = xml.indexOf('?>', lt + 2);
      if (close === -1) fail(lt, 'processing instruction is not closed with ?>');
      PI_TARGET.lastIndex = lt + 2;
      const target = PI_TARGET.exec(xml)?.[1];
      if (target === undefined) fail(lt, 'processing instruction without a valid target');
      if (target!.toLowerCase() === 'xml') {
        if (lt !== 0 || target !== 'xml') fail(lt, 'the XML declaration must be at the very start of the document, in lower case');
        XML_DECL.lastIndex = 0;
        const d = XML_DECL.exec(xml);
        if (!d) fail(lt, 'malformed XML declaration (expected <?xml version="1.0" encoding="UTF-8"?>)');
        const enc = d![1] ?? d![2];
        if (enc !== undefined && !/^utf-?8$/i.test(enc)) fail(lt, `encoding ${enc} is not supported (use UTF-8)`);
      }
      i = close + 2;
    } else if (xml.startsWith('</', lt)) {
      END_TAG.lastIndex = lt;
      const m = END_TAG.exec(xml);
      if (!m) fail(lt, 'malformed end tag');
      const open = stack.pop();
      if (!open) fail(lt, `end tag </${m![1]}> without a start tag`);
      if (open!.name !== m![1]) {
        const p = position(xml, open!.at);
        fail(lt, `end tag </${m![1]}> does not match <${open!.name}> (line ${p.line}, column ${p.column})`);
      }
      if (stack.length === 0) rootDone = true;
      i = END_TAG.lastIndex;
    } else {
      START_TAG.lastIndex = lt;
      const m = START_TAG.exec(xml);
      if (!m) fail(lt, "'<' that starts no tag (write &lt;)");
      if (stack.length === 0 && rootDone) fail(lt, `a second root element <${m![1]}>`);
      let j = START_TAG.lastIndex;
      const seen = new Set<string>();
      for (;;) {
        ATTR.lastIndex = j;
        const a = ATTR.exec(xml);
        if (!a) break;
        if (seen.has(a[1]!)) fail(j, `attribute ${a[1]} appears twice`);
        seen.add(a[1]!);
        const vStart = ATTR.lastIndex - a[2]!.length + 1;
        const vEnd = ATTR.lastIndex - 1;
        const raw = xml.indexOf('<', vStart);
        if (raw !== -1 && raw < vEnd) fail(raw, `'<' inside the value of attribute ${a[1]} (write &lt;)`);
        refs(vStart, vEnd, `the value of attribute ${a[1]}`);
        j = ATTR.lastIndex;
      }
      TAG_END.lastIndex = j;
      const e = TAG_END.exec(xml);
      if (!e) fail(j, `malformed start tag <${m![1]}>`);
      if (e![1] === '/') { if (stack.length === 0) rootDone = true; } else stack.push({ name: m![1]!, at: lt });
      i = TAG_END.lastIndex;
    }
  }
  if (stack.length > 0) fail(stack[stack.length - 1]!.at, `<${stack[stack.length - 1]!.name}> is not closed`);
  if (!rootDone) fail(n, 'no root element (is the file empty?)');
  const v = XMLValidator.validate(xml);
  if (v !== true) {
    const msg = v.err.msg.startsWith("Invalid '[") ? 'unclosed elements' : v.err.msg.slice(0, 200);
    throw new XmlSyntaxError(source, v.err.line, v.err.col ?? 1, msg);
  }
}

/** A config file's text: at most MAX_CONFIG_BYTES, valid UTF-8; errors are ConfigErrors. */
export function readXmlFile(path: string): string {
  let bytes: Buffer;
  try { bytes = readBoundedSync(path, MAX_CONFIG_BYTES); } catch (e) {
    if (e instanceof TooLargeError) throw new ConfigError('file', `${path} is larger than ${MAX_CONFIG_BYTES} bytes (1 MiB); is it the right file?`);
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.code === 'EACCES' ? 'permission denied' : err.code === 'EISDIR' ? 'is a directory' : err.message;
    throw new ConfigError('file', `cannot read ${path}: ${why}`);
  }
  return decodeXml(bytes, path);
}

/** Checks, then parses (every element an array, see xml-helpers); a BOM is tolerated. */
export function parseXml(xml: string, source: string): XChildren {
  const body = xml.replace(/^\uFEFF/, '');
  checkWellFormed(body, source);
  return parser.parse(body) as XChildren;
}
