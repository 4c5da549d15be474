import t, { type Test } from 'tap';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { isDeepStrictEqual } from 'node:util';
import {
  type XrValue,
  XmlRpcError,
  XmlRpcFault,
  parseMethodCall,
  parseMethodResponse,
  serializeFault,
  serializeMethodCall,
  serializeResponse,
} from '../src/control/xmlrpc.js';

// What a string must become after a trip through XML 1.0: unrepresentable
// characters (C0 controls, U+FFFE/U+FFFF, lone surrogates) turn into U+FFFD.
const BAD_CHARS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const cleanStr = (s: string) => s.replace(BAD_CHARS, '\uFFFD');

function expected(v: XrValue): XrValue {
  if (typeof v === 'string') return cleanStr(v);
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map(expected);
  const o: { [k: string]: XrValue } = {};
  for (const k of Object.keys(v)) {
    if (v[k] === undefined) continue;
    Object.defineProperty(o, cleanStr(k), { value: expected(v[k]), enumerable: true, writable: true, configurable: true });
  }
  return o;
}

const ws = fc.constantFrom('', ' ', '  ', '\n', '\t', ' \r\n ', '\r');
const anyString = fc.oneof(
  fc.string({ unit: 'binary' }),
  fc.string({ unit: 'binary-ascii' }),
  fc.string({ unit: 'grapheme' }),
  fc.constantFrom('', '&amp;', '<![CDATA[x]]>', ']]>', '&#10;', '\u{1F600}', '\uD800'),
);
const str = fc.tuple(ws, anyString, ws).map(([a, b, c]) => a + b + c);

function valueArb(s: fc.Arbitrary<string>, num: fc.Arbitrary<number>) {
  return fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constant(null), fc.boolean(), num, s, fc.uint8Array({ maxLength: 80 }),
      fc.array(tie('value'), { maxLength: 5 }),
      fc.dictionary(s, tie('value'), { maxKeys: 5, noNullPrototype: true }),
    ),
  })).value as fc.Arbitrary<XrValue>;
}
const num = fc.oneof(fc.integer(), fc.maxSafeInteger(), fc.double({ noNaN: true, noDefaultInfinity: true }));
const xrValue = valueArb(str, num);

function throwsXr(t: Test, f: () => unknown, msg: string) {
  try {
    f();
    t.fail(`${msg}: did not throw`);
  } catch (e) {
    t.ok(e instanceof XmlRpcError, `${msg}: ${e instanceof Error ? e.message : e}`);
  }
}

t.test('round trip of every type', async (t) => {
  const vals: XrValue[] = [null, true, false, 0, -1, 2147483647, -2147483648, 2147483648, 2 ** 53 - 1, -0, 1.5,
    -1e-300, 1.7976931348623157e308, '', ' ', '  lead and trail \n\t', 'a & b < c > d', 'x\r\ny\rz', '\u{1F600}é中',
    new Uint8Array(0), new Uint8Array([0, 1, 2, 255]), [], [1, 'a', [null]], {}, { a: 1, 'b c': [true], '': '' },
    '2024-01-01T00:00:00'];
  for (const v of vals) {
    t.ok(isDeepStrictEqual(parseMethodResponse(serializeResponse(v)), v), `response ${String(v)}`);
    t.ok(isDeepStrictEqual(parseMethodCall(serializeMethodCall('m.x', [v, v])), { method: 'm.x', params: [v, v] }));
  }
  t.equal(parseMethodResponse(serializeResponse(NaN)), 'NaN');
  t.equal(parseMethodResponse(serializeResponse(-Infinity)), '-Infinity');
  t.same(parseMethodResponse(serializeResponse({ a: 1, b: undefined } as unknown as XrValue)), { a: 1 });
  t.equal(parseMethodResponse(serializeResponse('a\u0000b\uFFFF\uD800')), 'a\uFFFDb\uFFFD\uFFFD');
  const proto = parseMethodResponse(serializeResponse(JSON.parse('{"__proto__": 5}'))) as Record<string, XrValue>;
  t.equal(Object.getPrototypeOf(proto), Object.prototype);
  t.equal(Object.getOwnPropertyDescriptor(proto, '__proto__')?.value, 5);
  t.ok(parseMethodResponse(serializeResponse(new Uint8Array([1]))) instanceof Uint8Array);
});

t.test('property: arbitrary values survive both directions', async (t) => {
  fc.assert(fc.property(xrValue, (v) => isDeepStrictEqual(parseMethodResponse(serializeResponse(v)), expected(v))), { numRuns: 400 });
  fc.assert(fc.property(str, fc.array(xrValue, { maxLength: 4 }), (m, ps) => {
    fc.pre(m.trim() !== '' && cleanStr(m) === m && !m.includes('\r'));
    return isDeepStrictEqual(parseMethodCall(serializeMethodCall(m, ps)), { method: m.trim(), params: ps.map(expected) });
  }), { numRuns: 400 });
  t.pass('properties hold');
});

t.test('faults', async (t) => {
  try {
    parseMethodResponse(serializeFault(-32601, 'no such method <x> & y'));
    t.fail('no throw');
  } catch (e) {
    t.ok(e instanceof XmlRpcFault);
    t.equal((e as XmlRpcFault).code, -32601);
    t.equal((e as XmlRpcFault).message, 'no such method <x> & y');
  }
  // xmlrpc.client.dumps(Fault(1, 'boom'), methodresponse=True)
  const py = "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n" +
    '<value><int>1</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>boom</string></value>\n' +
    '</member>\n</struct></value>\n</fault>\n</methodResponse>\n';
  t.throws(() => parseMethodResponse(py), new XmlRpcFault(1, 'boom'));
  t.throws(() => parseMethodResponse(py), { code: 1, message: 'boom' });
  throwsXr(t, () => parseMethodResponse('<methodResponse><fault><value><int>1</int></value></fault></methodResponse>'), 'fault not struct');
  throwsXr(t, () => parseMethodResponse('<methodResponse><fault><value><struct><member><name>faultCode</name>' +
    '<value>x</value></member></struct></value></fault></methodResponse>'), 'fault without code');
});

t.test('XML as Python xmlrpc.client writes it', async (t) => {
  const wrap = (p: string) => `<?xml version='1.0'?>\n<methodCall>\n<methodName>localproxy</methodName>\n<params>\n${p}</params>\n</methodCall>\n`;
  const par = (v: string) => `<param>\n<value>${v}</value>\n</param>\n`;
  t.same(parseMethodCall(wrap(par('<string>sys:link.GetNeighbors</string>'))), { method: 'localproxy', params: ['sys:link.GetNeighbors'] });
  t.same(parseMethodCall(wrap(par('<string>Dht.Get</string>') + par('<int>3</int>'))).params, ['Dht.Get', 3]);
  // dumps((b'\x00\x01' * 40,)): base64 wrapped at 76 columns
  const b64 = '<base64>\nAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEAAQABAAEA\n' +
    'AQABAAEAAQABAAEAAQABAAEAAQABAAE=\n</base64>';
  const bin = parseMethodCall(wrap(par(b64) + par('<nil/>'))).params;
  t.ok(isDeepStrictEqual(bin, [new Uint8Array(80).map((_, i) => i % 2), null]));
  const p = (v: string) => parseMethodCall(wrap(par(v))).params[0];
  t.equal(p('<i4>-7</i4>'), -7);
  t.equal(p('<i8>9007199254740991</i8>'), 9007199254740991);
  t.equal(p('<int> +12 </int>'), 12);
  t.equal(p('<double>1e+100</double>'), 1e100);
  t.equal(p('<double>inf</double>'), Infinity);
  t.ok(Number.isNaN(p('<double>nan</double>')));
  t.equal(p('<boolean>0</boolean>'), false);
  t.equal(p('<dateTime.iso8601>20240102T03:04:05</dateTime.iso8601>'), '20240102T03:04:05');
  t.equal(p('<ex:nil/>'), null);
  t.equal(p('  untyped  text '), '  untyped  text ');
  t.equal(p(''), '');
  t.equal(p('<string/>'), '');
  t.equal(p('\n<string>  keep\n  me  </string>\n'), '  keep\n  me  ');
  t.equal(p('<string>a&#10;b&#x1F600;&#13;&lt;&amp;&gt;&quot;&apos;</string>'), 'a\nb\u{1F600}\r<&>"\'');
  t.equal(p('<string><![CDATA[<raw> & ]]>x<!-- c -->y</string>'), '<raw> & xy');
  t.same(parseMethodCall(wrap(par('') + '<param><value/></param>')).params, ['', '']);
  t.same(p('<array><data>\n<value><int>1</int></value>\n<value><struct>\n<member>\n<name>k</name>\n' +
    '<value><string>v</string></value>\n</member>\n</struct></value>\n</data></array>'), [1, { k: 'v' }]);
  t.same(parseMethodCall('<methodCall><methodName>m</methodName></methodCall>'), { method: 'm', params: [] });
});

t.test('malformed documents throw XmlRpcError', async (t) => {
  const call = (v: string) => `<methodCall><methodName>m</methodName><params><param><value>${v}</value></param></params></methodCall>`;
  const bad: [string, string][] = [
    ['not xml', 'not xml'], ['empty', ''], ['wrong root', '<methodResponse><params/></methodResponse>'],
    ['two roots', '<methodCall><methodName>m</methodName></methodCall><methodCall/>'],
    ['missing methodName', '<methodCall><params/></methodCall>'],
    ['empty methodName', '<methodCall><methodName> </methodName></methodCall>'],
    ['unknown type', call('<foo>1</foo>')], ['bad int', call('<int>12a</int>')], ['float int', call('<int>1.5</int>')],
    ['empty int', call('<int/>')], ['huge int', call('<i8>99999999999999999999</i8>')],
    ['bad boolean', call('<boolean>2</boolean>')], ['bad double', call('<double>1.2.3</double>')],
    ['bad base64', call('<base64>@@@@</base64>')], ['two types', call('<int>1</int><int>2</int>')],
    ['mixed content', call('x<int>1</int>')], ['element in string', call('<string><b/></string>')],
    ['member without value', call('<struct><member><name>a</name></member></struct>')],
    ['array without data', call('<array><value/></array>')], ['nil with content', call('<nil>x</nil>')],
    ['unknown entity', call('<string>&nbsp;</string>')], ['bad char ref', call('<string>&#0;</string>')],
    ['bare ampersand', call('<string>a & b</string>')], ['mismatched tags', call('<string>x</int>')],
    ['doctype', '<?xml version="1.0"?><!DOCTYPE methodCall [<!ENTITY e "x">]><methodCall><methodName>&e;</methodName></methodCall>'],
    ['proto tag', call('<__proto__>1</__proto__>')], ['param without value', '<methodCall><methodName>m</methodName><params><param/></params></methodCall>'],
    ['text in params', '<methodCall><methodName>m</methodName><params>junk</params></methodCall>'],
  ];
  for (const [name, doc] of bad) throwsXr(t, () => parseMethodCall(doc), name);
  throwsXr(t, () => parseMethodResponse('<methodResponse><params></params></methodResponse>'), 'no param');
  throwsXr(t, () => parseMethodResponse('<methodCall><methodName>m</methodName></methodCall>'), 'response wrong root');
  throwsXr(t, () => parseMethodCall(null as unknown as string), 'non-string');

  const good = serializeMethodCall('m', [{ a: [1, 'x'] }, new Uint8Array([1, 2, 3])]);
  let allThrew = true;
  for (let i = 0; i < good.lastIndexOf('>'); i++) {
    try { parseMethodCall(good.slice(0, i)); allThrew = false; } catch (e) { if (!(e instanceof XmlRpcError)) allThrew = false; }
  }
  t.ok(allThrew, 'every truncation throws XmlRpcError');
});

t.test('limits: depth and size', async (t) => {
  let v: XrValue = 1;
  for (let i = 1; i < 64; i++) v = [v];
  t.ok(isDeepStrictEqual(parseMethodResponse(serializeResponse(v)), v), '64 levels accepted');
  throwsXr(t, () => serializeResponse([v]), 'serialize 65 levels');
  const nest = (n: number, open: string, close: string) =>
    `<methodResponse><params><param>${open.repeat(n)}<value>1</value>${close.repeat(n)}</param></params></methodResponse>`;
  t.doesNotThrow(() => parseMethodResponse(nest(63, '<value><struct><member><name>k</name>', '</member></struct></value>')), '64 struct levels');
  throwsXr(t, () => parseMethodResponse(nest(64, '<value><array><data>', '</data></array></value>')), '65 array levels');
  throwsXr(t, () => parseMethodResponse(nest(64, '<value><struct><member><name>k</name>', '</member></struct></value>')), '65 struct levels');
  throwsXr(t, () => parseMethodResponse(nest(50000, '<value><array><data>', '</data></array></value>')), '50000 levels');
  throwsXr(t, () => parseMethodResponse('<a>'.repeat(200000)), 'deep truncated');
  const cyc: XrValue[] = [];
  cyc.push(cyc);
  throwsXr(t, () => serializeResponse(cyc), 'cycle');
  const big = serializeMethodCall('m', ['x'.repeat(4 * 1024 * 1024)]);
  throwsXr(t, () => parseMethodCall(big), 'over 4 MiB');
  t.equal((parseMethodCall(serializeMethodCall('m', ['x'.repeat(4 * 1024 * 1024 - 200)])).params[0] as string).length, 4 * 1024 * 1024 - 200);
});

t.test('fuzz: mutated documents only ever throw XmlRpcError', async (t) => {
  const mut = fc.array(fc.tuple(fc.nat(), fc.nat({ max: 3 }), fc.constantFrom('<', '>', '/', '&', ';', '"', 'a', '<value>', '</data>', '&#', ' ')), { minLength: 1, maxLength: 4 });
  fc.assert(fc.property(xrValue, mut, fc.boolean(), (v, muts, asCall) => {
    let doc = asCall ? serializeMethodCall('m', [v]) : serializeResponse(v);
    for (const [pos, del, ins] of muts) {
      const p = pos % (doc.length + 1);
      doc = doc.slice(0, p) + ins + doc.slice(p + del);
    }
    try {
      if (asCall) parseMethodCall(doc); else parseMethodResponse(doc);
    } catch (e) {
      if (!(e instanceof XmlRpcError) && !(e instanceof XmlRpcFault)) throw e;
    }
  }), { numRuns: 500 });
  t.pass('no foreign exceptions');
});

// --- interop with CPython's xmlrpc.client ---------------------------------
const PY = `
import sys, json, base64, xmlrpc.client as x
def enc(v):
    if isinstance(v, bytes): return {"$b64": base64.b64encode(v).decode()}
    if isinstance(v, (list, tuple)): return [enc(e) for e in v]
    if isinstance(v, dict): return {k: enc(e) for k, e in v.items()}
    return v
def dec(v):
    if isinstance(v, dict):
        if list(v) == ["$b64"]: return base64.b64decode(v["$b64"])
        return {k: dec(e) for k, e in v.items()}
    if isinstance(v, list): return [dec(e) for e in v]
    return v
data = sys.stdin.buffer.read()
if sys.argv[1] == "loads":
    params, method = x.loads(data, use_builtin_types=True)
    out = json.dumps({"method": method, "params": enc(params)})
else:
    out = x.dumps(tuple(dec(json.loads(data))), methodname="localproxy", allow_none=True)
sys.stdout.buffer.write(out.encode("utf-8"))
`;
const hasPython = spawnSync('python3', ['-c', 'import xmlrpc.client'], { timeout: 10000 }).status === 0;

function py(mode: string, input: string): string {
  const r = spawnSync('python3', ['-c', PY, mode], { input, timeout: 30000, encoding: 'utf8', env: { ...process.env, PYTHONIOENCODING: 'utf-8' } });
  if (r.status !== 0) throw new Error(`python3 failed: ${r.error ?? ''} ${r.stderr}`);
  return r.stdout;
}
const toJson = (v: XrValue): unknown => v instanceof Uint8Array ? { $b64: Buffer.from(v).toString('base64') }
  : Array.isArray(v) ? v.map(toJson)
  : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, e]) => [k, toJson(e)])) : v;

t.test('interop with python3 xmlrpc.client', { skip: hasPython ? false : 'python3 not available' }, async (t) => {
  // Ours -> Python. Python keeps -0.0 and reads doubles as floats, so JSON compares exactly.
  const ours = fc.sample(valueArb(str, num).filter((v) => !JSON.stringify(toJson(v)).includes('"$b64":')), { numRuns: 150, seed: 42 });
  const fixed: XrValue[] = [{ ok: true, ' sp ': ['  a\r\n ', '', null, -0, 2 ** 40, 1.25, new Uint8Array([0, 255])] }, 'bad\u0001char', NaN];
  const all = [...fixed, ...ours];
  const got = JSON.parse(py('loads', serializeMethodCall('sys:link.GetNeighbors', all)));
  t.equal(got.method, 'sys:link.GetNeighbors');
  t.equal(got.params.length, all.length);
  for (let i = 0; i < all.length; i++) {
    if (!isDeepStrictEqual(got.params[i], toJson(expected(all[i])))) t.fail(`value ${i} differs: ${JSON.stringify(got.params[i])}`);
  }
  const resp = JSON.parse(py('loads', serializeResponse(fixed[0])));
  t.same(resp.params, [toJson(fixed[0])]);

  // Python -> ours. Python writes \r and control characters raw, which XML cannot
  // carry, and JSON loses -0 and ints beyond int32, so keep to values both sides can.
  const pyStr = str.filter((s) => cleanStr(s) === s && !s.includes('\r'));
  const pyNum = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0) && !Number.isInteger(d)));
  const theirs = [...fc.sample(valueArb(pyStr, pyNum).filter((v) => !JSON.stringify(toJson(v)).includes('"$b64":')), { numRuns: 150, seed: 7 }),
    '  lead/trail  ', '', new Uint8Array(100).map((_, i) => i), { 'k&<>': [null, true, 3] }];
  const parsed = parseMethodCall(py('dumps', JSON.stringify(theirs.map(toJson))));
  t.equal(parsed.method, 'localproxy');
  t.equal(parsed.params.length, theirs.length);
  for (let i = 0; i < theirs.length; i++) {
    if (!isDeepStrictEqual(parsed.params[i], theirs[i])) t.fail(`python value ${i} differs: ${JSON.stringify(toJson(parsed.params[i]))}`);
  }
  t.pass('interop checked');
});
