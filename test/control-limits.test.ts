// The control API's bounds (issue 13 points 4 and 5): a body over 4 MiB gets HTTP 413 (not a
// reset), XML-RPC bodies must be well-formed UTF-8 XML (else a fault), /json nests at most 64
// levels like XML-RPC, and a proxied call whose reply cannot be carried fails at once.
import t, { type Test } from 'tap';
import http from 'node:http';
import { ControlServer } from '../src/control/server.js';
import { parseMethodResponse, serializeMethodCall, XmlRpcFault } from '../src/control/xmlrpc.js';
import { MAX_RPC_BYTES } from '../src/rpc/rpc-wire.js';
import { freeTcpPort } from './helpers/ports.js';
import { startRing } from './helpers/ring.js';

const MAX_BODY = 4 * 1024 * 1024;

interface Reply { status: number; body: string }

/** POSTs `body`, optionally without Content-Length (chunked), and waits (bounded) for the reply. */
function post(port: number, path: string, body: Buffer | string, chunked = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = chunked ? {} : { 'content-length': Buffer.byteLength(body) };
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('no reply within 20 s')));
    // The server may close while we still send a refused body; the reply already came.
    req.on('error', (e: NodeJS.ErrnoException) => { if (e.code !== 'EPIPE' && e.code !== 'ECONNRESET') reject(e); });
    if (chunked) {
      const b = Buffer.from(body);
      for (let i = 0; i < b.length; i += 256 * 1024) req.write(b.subarray(i, i + 256 * 1024));
      req.end();
    } else req.end(body);
  });
}

function fault(t: Test, r: Reply, re: RegExp, label: string): void {
  t.equal(r.status, 200, `${label}: HTTP 200 carrying a fault`);
  try {
    parseMethodResponse(r.body);
    t.fail(`${label}: accepted`);
  } catch (e) {
    t.ok(e instanceof XmlRpcFault, `${label}: a fault`);
    t.match((e as Error).message, re, `${label}: ${(e as Error).message}`);
  }
}

t.test('control API limits', async (t) => {
  const nodes = await startRing(2, 'udp');
  t.teardown(() => Promise.all(nodes.map((n) => n.stop())));
  for (const n of nodes) {
    n.rpc.register('test.echo', (args) => args[0] ?? null);
    n.rpc.register('test.big', (args) => new Uint8Array(Number(args[0])));
  }
  const port = await freeTcpPort();
  const server = new ControlServer(nodes, port);
  await server.start();
  t.teardown(() => server.stop());

  t.test('a body over 4 MiB gets 413', async (t) => {
    const over = serializeMethodCall('localproxy', ['test.echo', 'x'.repeat(MAX_BODY)]);
    const r = await post(port, '/xm.rem', over);
    t.equal(r.status, 413, 'with Content-Length');
    t.match(r.body, /larger than 4194304 bytes/);
    const c = await post(port, '/json', JSON.stringify({ method: 'localproxy', params: ['test.echo', 'x'.repeat(MAX_BODY)] }), true);
    t.equal(c.status, 413, 'chunked, without Content-Length');
    const at = JSON.stringify({ method: 'localproxy', params: ['test.echo', 'x'.repeat(MAX_BODY - 100)] });
    const ok = await post(port, '/json', at + ' '.repeat(MAX_BODY - Buffer.byteLength(at)));
    t.equal(ok.status, 200, 'exactly 4 MiB is accepted');
    t.equal((JSON.parse(ok.body) as { result: string }).result.length, MAX_BODY - 100);
    const after = await post(port, '/json', JSON.stringify({ method: 'localproxy', params: ['test.echo', 'still up'] }));
    t.same(JSON.parse(after.body), { result: 'still up' }, 'the server still answers');
  });

  t.test('XML-RPC bodies must be well-formed UTF-8 XML', async (t) => {
    const echo = (v: string) => `<?xml version="1.0"?><methodCall><methodName>localproxy</methodName><params>` +
      `<param><value><string>test.echo</string></value></param><param><value><string>${v}</string></value></param></params></methodCall>`;
    const good = await post(port, '/xm.rem', echo('a &lt; b'));
    t.equal(parseMethodResponse(good.body), 'a < b', 'a well-formed call works');
    for (const [label, doc, re] of [
      ['"--" in a comment', echo('x').replace('<methodCall>', '<methodCall><!-- a -- b -->'), /'--' inside a comment/],
      ['comment ending in --->', echo('x').replace('<methodCall>', '<methodCall><!-- a --->'), /comment ends in '--->'/],
      ['undefined entity', echo('&nbsp;'), /undefined entity &nbsp;/],
      ['NUL character', echo('\u0000'), /character U\+0000 is not allowed/],
      ['U+0001 character', echo('\u0001'), /character U\+0001 is not allowed/],
      ['raw < in an attribute', echo('x').replace('<methodName>', '<methodName a="<">'), /'<' inside the value of attribute a/],
      ['bare & in an attribute', echo('x').replace('<methodName>', '<methodName a="&">'), /bare '&' in the value of attribute a/],
      [']]> in text', echo(']]>'), /']]>' is not allowed in text/],
      ['nested entity definitions', echo('&x;').replace('?>', '?><!DOCTYPE m [<!ENTITY x "&y;"><!ENTITY y "z">]>'), /DOCTYPE is not allowed/],
    ] as Array<[string, string, RegExp]>) {
      fault(t, await post(port, '/xm.rem', doc), new RegExp(`not well-formed XML: ${re.source}`), label);
    }
    const bad = Buffer.concat([Buffer.from(echo('x').replace('>x<', '>')), Buffer.from([0xff, 0xfe])]);
    fault(t, await post(port, '/xm.rem', bad), /not valid UTF-8/, 'invalid UTF-8');
    const badJson = await post(port, '/json', Buffer.from([0x7b, 0xc3, 0x28, 0x7d]));
    t.match(JSON.parse(badJson.body), { error: { message: /not valid UTF-8/ } }, 'invalid UTF-8 on /json');
  });

  t.test('/json nests at most 64 levels, like XML-RPC', async (t) => {
    const nested = (n: number) => '['.repeat(n) + '1' + ']'.repeat(n);
    const deep = await post(port, '/json', `{"method":"localproxy","params":["test.echo",${nested(3000)}]}`);
    t.equal(deep.status, 200);
    t.match(JSON.parse(deep.body), { error: { code: -32600, message: /nested deeper than 64/ } }, 'depth 3000: a clear error');
    const max = await post(port, '/json', `{"method":"localproxy","params":["test.echo",${nested(63)}]}`);
    t.same(JSON.parse(max.body), { result: JSON.parse(nested(63)) }, '64 levels (63 arrays around a number) work');
    const over = await post(port, '/json', `{"method":"localproxy","params":["test.echo",${nested(64)}]}`);
    t.match(JSON.parse(over.body), { error: { message: /nested deeper than 64/ } }, '65 levels do not');
  });

  t.test('a proxied reply too large to carry fails at once, saying so', async (t) => {
    const call = (bytes: number) => post(port, '/json', JSON.stringify({ method: 'proxy', params: [nodes[1]!.address.key, 5, 1, 'test.big', bytes] }));
    const small = JSON.parse((await call(1000)).body) as { result: unknown[] };
    t.equal(small.result.length, 1, 'a small reply arrives');
    const started = Date.now();
    const big = JSON.parse((await call(MAX_RPC_BYTES + 4096)).body) as { error?: { message: string } };
    t.match(big, { error: { message: /test\.big: reply of \d+ bytes exceeds the \d+ an RPC message can carry/ } }, big.error?.message ?? 'no error');
    t.ok(Date.now() - started < 2500, `within 2.5 s (took ${Date.now() - started} ms), not after the 5 s proxy timeout`);
    const t0 = Date.now();
    const req = JSON.parse((await post(port, '/json', JSON.stringify({ method: 'proxy', params: [nodes[1]!.address.key, 5, 1, 'test.echo', { $base64: Buffer.alloc(MAX_RPC_BYTES + 4096).toString('base64') }] }))).body);
    t.match(req, { error: { message: /request of \d+ bytes exceeds/ } }, 'an oversize request fails before it is sent');
    t.ok(Date.now() - t0 < 2500, 'at once');
  });
});
