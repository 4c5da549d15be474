// Every XML input is checked for well-formedness first (issue 13 point 4): the shipped
// examples pass a strict parser (python3's expat) and ours; each malformation the old
// parsers accepted is refused with source:line:column, by the checker, by the config
// loaders (run_bootstrap_node and groupvpn --ipop exit 2 with one line) and by DHCPConfig.
import t from 'tap';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadIpopConfig } from '../src/config/ipop-config.js';
import { loadNodeConfig, parseNodeConfig } from '../src/config/node-config.js';
import { checkWellFormed, decodeXml, MAX_CONFIG_BYTES, XmlSyntaxError } from '../src/config/xml-wellformed.js';
import { parseDhcpConfig } from '../src/vpn/dhcp-config.js';
import { ROOT, RUN, run, tempDir } from './helpers/procs.js';

const GROUPVPN = join(ROOT, 'dist/src/cli/groupvpn.js');
const CONFIG_DIR = join(ROOT, 'config');

/** python3's expat (via minidom): null if it accepts the file, else its message. */
function strictParse(file: string): string | null {
  const r = spawnSync('python3', ['-c', 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])', file], { encoding: 'utf8', timeout: 30_000 });
  if (r.error) throw new Error(`python3 is needed as the independent strict parser: ${r.error.message}`);
  return r.status === 0 ? null : r.stderr.trim().split('\n').pop()!;
}

function syntaxError(f: () => unknown): XmlSyntaxError | undefined {
  try { f(); } catch (e) { if (e instanceof XmlSyntaxError) return e; throw e; }
  return undefined;
}

t.test('every file in config/ is well-formed for python3 (expat) and for us', async (t) => {
  const files = readdirSync(CONFIG_DIR).filter((f) => f.endsWith('.xml'));
  t.ok(files.length >= 2, `config/ has the examples (${files.join(', ')})`);
  for (const f of files) {
    const path = join(CONFIG_DIR, f);
    t.equal(strictParse(path), null, `${f}: python3 accepts it`);
    t.doesNotThrow(() => checkWellFormed(decodeXml(readFileSync(path), path), path), `${f}: our check accepts it`);
  }
  t.ok(loadNodeConfig(join(CONFIG_DIR, 'node.config.xml')).ipop, 'node.config.xml loads, with its IpopConfig');
  t.equal(parseDhcpConfig(readFileSync(join(CONFIG_DIR, 'dhcp.config.xml'), 'utf8')).namespace, 'ipopns', 'dhcp.config.xml loads');
});

// [label, document, line, column, detail]; python3 refuses each one too, except POLICY's.
const BAD: Array<[string, string, number, number, RegExp]> = [
  ['"--" in a comment', '<a>\n  <!-- run with --help -->\n</a>', 2, 17, /'--' inside a comment/],
  ['comment ending in --->', '<a><!-- x ---></a>', 1, 11, /comment ends in '--->'/],
  ['undefined entity', '<a>\n<b>&nbsp;</b></a>', 2, 4, /undefined entity &nbsp;/],
  ['NUL character', '<a>x\u0000</a>', 1, 5, /U\+0000 is not allowed/],
  ['U+0001 character', '<a>\n\u0001</a>', 2, 1, /U\+0001 is not allowed/],
  ['character reference to U+0001', '<a>&#1;</a>', 1, 4, /character reference &#1; is not allowed/],
  ['raw < in an attribute', '<a b="x<y"/>', 1, 8, /'<' inside the value of attribute b/],
  ['bare & in an attribute', "<a b='x & y'/>", 1, 9, /bare '&' in the value of attribute b/],
  ['bare & in text', '<a>x & y</a>', 1, 6, /bare '&' in text/],
  [']]> in text', '<a>x ]]> y</a>', 1, 6, /']]>' is not allowed in text/],
  ['DOCTYPE', '<?xml version="1.0"?>\n<!DOCTYPE a>\n<a/>', 2, 1, /DOCTYPE is not allowed/],
  ['nested entity definitions', '<!DOCTYPE a [<!ENTITY x "&y;"><!ENTITY y "z">]><a>&x;</a>', 1, 1, /DOCTYPE is not allowed/],
  ['two root elements', '<a/>\n<b/>', 2, 1, /a second root element <b>/],
  ['text after the root', '<a/>x', 1, 5, /text after the root element/],
  ['unclosed element', '<a>\n  <b>\n</a>', 3, 1, /end tag <\/a> does not match <b> \(line 2, column 3\)/],
  ['unclosed comment', '<a><!-- x</a>', 1, 4, /comment is not closed/],
  ['late XML declaration', '<a><?xml version="1.0"?></a>', 1, 4, /XML declaration must be at the very start/],
  ['duplicate attribute', '<a b="1" b="2"/>', 1, 9, /attribute b appears twice/],
  ['malformed XML declaration', '<?xml versio="1.0"?><a/>', 1, 1, /malformed XML declaration/],
  ['processing instruction without a target', '<a><?/x?></a>', 1, 4, /processing instruction without a valid target/],
  ['declared non-UTF-8 encoding', '<?xml version="1.0" encoding="ISO-8859-1"?><a/>', 1, 1, /encoding ISO-8859-1 is not supported/],
  ['empty document', '', 1, 1, /no root element/],
];

/** Well-formed XML that we refuse anyway: no DTD (so no entity definitions), UTF-8 only. */
const POLICY = new Set(['DOCTYPE', 'nested entity definitions', 'declared non-UTF-8 encoding']);

t.test('each malformation is refused with line and column, as python3 does', async (t) => {
  const dir = tempDir(t);
  for (const [label, doc, line, column, detail] of BAD) {
    const e = syntaxError(() => checkWellFormed(doc, 'in.xml'));
    t.ok(e, `${label}: refused`);
    if (!e) continue;
    t.same([e.line, e.column], [line, column], `${label}: at ${line}:${column}`);
    t.match(e.detail, detail, `${label}: ${e.detail}`);
    t.equal(e.message, `in.xml:${line}:${column}: not well-formed XML: ${e.detail}`, `${label}: one-line message`);
    t.notMatch(e.message, /\n/);
    const f = join(dir, 'case.xml');
    writeFileSync(f, doc);
    if (POLICY.has(label)) t.equal(strictParse(f), null, `${label}: python3 accepts it; we refuse it by policy`);
    else t.not(strictParse(f), null, `${label}: python3 refuses it too`);
  }
  t.doesNotThrow(() => checkWellFormed('<?xml version="1.0" encoding="utf-8"?>\n<!-- ok - fine -->\n<a b="&lt;&#x41;&amp;" c=\'"\'>x &gt; y ]] > <![CDATA[ <&]] ]]><?pi data?></a>\n', 's'),
    'what is allowed stays allowed');
});

t.test('invalid UTF-8 is refused with its position', async (t) => {
  const bytes = Buffer.concat([Buffer.from('<a>\n  é'), Buffer.from([0xff]), Buffer.from('</a>')]);
  const e = syntaxError(() => decodeXml(bytes, 'u.xml'));
  t.ok(e, 'refused');
  t.same([e?.line, e?.column], [2, 4], 'line 2, column 4 (after "  é")');
  t.match(e?.message ?? '', /^u\.xml:2:4: not well-formed XML: invalid UTF-8/);
  const cut = syntaxError(() => decodeXml(Buffer.from([0x3c, 0x61, 0x3e, 0xc3]), 'c.xml'));
  t.same([cut?.line, cut?.column], [1, 4], 'a character cut off at the end');
  t.equal(decodeXml(Buffer.from('\uFEFF<a/>'), 'b'), '<a/>', 'a BOM is dropped');
});

t.test('the config readers refuse each malformation (file:line:col)', async (t) => {
  const dir = tempDir(t);
  const node = (inner: string) => `<NodeConfig>\n<BrunetNamespace>n</BrunetNamespace>\n${inner}\n</NodeConfig>\n`;
  for (const [label, inner, col, detail] of [
    ['"--" in a comment', '<!-- a -- b -->', 8, /'--' inside a comment/],
    ['undefined entity', '<Dht><DataDirectory>&home;</DataDirectory></Dht>', 21, /undefined entity/],
    ['control character', '<Dht><DataDirectory>\u0001</DataDirectory></Dht>', 21, /U\+0001/],
    ['DOCTYPE-free entity use', '<EdgeListeners><EdgeListener type="u<dp"/></EdgeListeners>', 37, /'<' inside the value/],
  ] as Array<[string, string, number, RegExp]>) {
    const f = join(dir, 'node.xml');
    writeFileSync(f, node(inner));
    const e = syntaxError(() => loadNodeConfig(f));
    t.equal(e?.element, `${f}:3:${col}`, `NodeConfig ${label}: ${e?.message}`);
    t.match(e?.message ?? '', detail);
    t.ok(syntaxError(() => parseNodeConfig(node(inner))), `parseNodeConfig ${label}`);
    const ipop = join(dir, 'ipop.xml');
    writeFileSync(ipop, `<IpopConfig>\n<IpopNamespace>n</IpopNamespace>\n${inner}\n</IpopConfig>\n`);
    t.match(syntaxError(() => loadIpopConfig(ipop))?.element ?? '', `${ipop}:3:`, `ipop.config ${label}`);
    const dhcp = `<DHCPConfig>\n<Namespace>n</Namespace>\n${inner}\n</DHCPConfig>`;
    t.equal(syntaxError(() => parseDhcpConfig(dhcp, 'dhcp:n'))?.element, `dhcp:n:3:${col}`, `DHCPConfig ${label}`);
  }
});

t.test('run_bootstrap_node and groupvpn --ipop: one line naming file:line:col, exit 2', async (t) => {
  const dir = tempDir(t);
  const good = join(dir, 'good.xml');
  writeFileSync(good, '<NodeConfig><BrunetNamespace>n</BrunetNamespace><XmlRpcManager><Enabled>false</Enabled></XmlRpcManager></NodeConfig>');
  for (const [label, doc, line, column] of BAD.slice(0, 6)) {
    const f = join(dir, 'bad.xml');
    writeFileSync(f, doc);
    const r = await run(RUN, [f]);
    t.equal(r.code, 2, `run_bootstrap_node ${label}: exit 2`);
    t.match(r.stderr, new RegExp(`^run_bootstrap_node: ${f}:${line}:${column}: not well-formed XML: .+\\n$`), `run_bootstrap_node ${label}: ${r.stderr.trim()}`);
  }
  const ipop = join(dir, 'ipop.xml');
  writeFileSync(ipop, '<IpopConfig>\n  <!-- groupvpn --ipop -->\n</IpopConfig>');
  const r = await run(GROUPVPN, ['status', '-c', good, '--ipop', ipop, '--state-dir', dir]);
  t.equal(r.code, 2, 'groupvpn --ipop: exit 2');
  t.match(r.stderr, new RegExp(`${ipop}:2:17: not well-formed XML: '--' inside a comment\\n$`), r.stderr.trim());
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
});

t.test('configs are read bounded: /dev/zero and huge files fail at once with exit 2', async (t) => {
  const dir = tempDir(t);
  const started = Date.now();
  const z = await run(RUN, ['/dev/zero'], 20_000);
  t.equal(z.code, 2, 'run_bootstrap_node /dev/zero: exit 2');
  t.match(z.stderr, /\/dev\/zero is larger than 1048576 bytes/, z.stderr.trim());
  t.ok(Date.now() - started < 15_000, 'and does not hang');
  const big = join(dir, 'big.xml');
  writeFileSync(big, `<NodeConfig><BrunetNamespace>n</BrunetNamespace><!--${' '.repeat(MAX_CONFIG_BYTES)}--></NodeConfig>`);
  const b = await run(RUN, [big]);
  t.equal(b.code, 2, 'a config over 1 MiB: exit 2');
  t.match(b.stderr, /is larger than 1048576 bytes/);
  const good = join(dir, 'good.xml');
  writeFileSync(good, '<NodeConfig><BrunetNamespace>n</BrunetNamespace></NodeConfig>');
  const g = await run(GROUPVPN, ['status', '-c', good, '--ipop', '/dev/zero', '--state-dir', dir], 20_000);
  t.equal(g.code, 2, 'groupvpn --ipop /dev/zero: exit 2');
  t.match(g.stderr, /\/dev\/zero is larger than 1048576 bytes/);
  const u = join(dir, 'utf.xml');
  writeFileSync(u, Buffer.concat([Buffer.from('<NodeConfig>\n<BrunetNamespace>'), Buffer.from([0xc3, 0x28]), Buffer.from('</BrunetNamespace></NodeConfig>')]));
  const ur = await run(RUN, [u]);
  t.equal(ur.code, 2, 'invalid UTF-8: exit 2');
  t.match(ur.stderr, new RegExp(`${u}:2:18: not well-formed XML: invalid UTF-8`), ur.stderr.trim());
});

t.test('fuzz: mutated configs; we never accept what expat refuses, and throw only XmlSyntaxError', async (t) => {
  const base = readFileSync(join(CONFIG_DIR, 'dhcp.config.xml'), 'utf8');
  const piece = fc.constantFrom('<', '>', '/', '&', ';', '"', "'", '=', '-', '--', '!', '?', ']]>', '<!--', '-->', '&amp;', '&#0;', '&#65;', 'a', ' ', '\u0001', '<![CDATA[', ']]', '<b>', '</b>', '<?x ?>');
  const muts = fc.array(fc.tuple(fc.nat(), fc.nat({ max: 3 }), piece), { minLength: 1, maxLength: 3 });
  const docs = fc.sample(muts, { numRuns: 400, seed: 13 }).map((m) => {
    let doc = base;
    for (const [pos, del, ins] of m) { const p = pos % (doc.length + 1); doc = doc.slice(0, p) + ins + doc.slice(p + del); }
    return doc;
  });
  const ours = docs.map((d) => {
    try { checkWellFormed(d, 'fuzz'); return true; } catch (e) {
      if (!(e instanceof XmlSyntaxError)) throw e;
      return false;
    }
  });
  const py = spawnSync('python3', ['-c', `
import sys, json, xml.parsers.expat as x
out = []
for d in json.load(sys.stdin):
    p = x.ParserCreate()
    try:
        p.Parse(d.encode('utf-8'), True); out.append(True)
    except x.ExpatError:
        out.append(False)
print(json.dumps(out))`], { input: JSON.stringify(docs), encoding: 'utf8', timeout: 60_000 });
  if (py.status !== 0) throw new Error(`python3 failed: ${py.error ?? ''} ${py.stderr}`);
  const expat = JSON.parse(py.stdout) as boolean[];
  const unsound = docs.filter((_, i) => ours[i] && !expat[i]);
  t.same(unsound, [], 'nothing expat refuses is accepted');
  t.ok(ours.filter(Boolean).length > 0 && ours.filter((x) => !x).length > 0, `both outcomes occur (${ours.filter(Boolean).length} of ${docs.length} accepted)`);
});
