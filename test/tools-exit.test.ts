// Exit codes and bad input of bget, bput, crawl and brunet-ca: 2 bad input, 1 missing key or
// failure, 3 nothing running; bounded input; crawl --timeout; an empty value refused everywhere.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import http from 'node:http';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT_BAD_INPUT, EXIT_FAILED, EXIT_NOT_RUNNING, EXIT_OK } from '../src/cli/exit.js';
import { freeTcpPort } from './helpers/ports.js';
import { CRAWL, loopbackConfig, ROOT, run, startNodeProcess, tempDir, waitOutput } from './helpers/procs.js';

const BGET = join(ROOT, 'dist/tools/bget.js');
const BPUT = join(ROOT, 'dist/tools/bput.js');
const CA = join(ROOT, 'dist/tools/brunet-ca.js');

const oneLine = (t: Test, s: string, what: string) => {
  t.equal(s.trim().split('\n').length, 1, `${what}: one line`);
  t.notMatch(s, /\n\s+at /, `${what}: no stack trace`);
};

/** Runs bput with its stdin from a shell redirect or pipe (`stdin` is shell text); bounded. */
function bputShell(args: string[], stdin: string): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const quoted = [process.execPath, BPUT, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const c = spawn('sh', ['-c', stdin.includes('|') ? `${stdin} ${quoted}` : `${quoted} ${stdin}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    c.stdout!.on('data', (d) => { stdout += d; });
    c.stderr!.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => c.kill('SIGKILL'), 20_000);
    c.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr, ms: Date.now() - t0 }); });
  });
}

t.test('nothing running: bget, bput and crawl exit 3', async (t) => {
  const dead = String(await freeTcpPort());
  for (const [name, file, args] of [['bget', BGET, ['k']], ['bput', BPUT, ['k', 'v']], ['crawl', CRAWL, []]] as const) {
    const r = await run(file, ['--port', dead, ...args]);
    t.equal(r.code, EXIT_NOT_RUNNING, `${name}: exit 3`);
    t.match(r.stderr, /nothing listens on 127\.0\.0\.1/, `${name}: says nothing listens`);
    oneLine(t, r.stderr, name);
  }
});

t.test('crawl --timeout: an overall limit in seconds', async (t) => {
  // A control API that answers the first call and never the per-node ones (first run), or
  // answers for node A, whose left neighbour B never answers (second run).
  const A = 'brunet:node:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', B = 'brunet:node:BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
  const hung: http.ServerResponse[] = [];
  let answerA = false;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const call = JSON.parse(body) as { method: string; params: unknown[] };
      if (call.method === 'localproxy') res.end(JSON.stringify({ result: { self: A } }));
      else if (answerA && call.params[0] === A) res.end(JSON.stringify({ result: [{ neighbors: { self: A, left: B }, cons: 1 }] }));
      else hung.push(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => { server.closeAllConnections(); server.close(); });
  const port = String((server.address() as { port: number }).port);

  const t0 = Date.now();
  const r = await run(CRAWL, ['--port', port, '--timeout', '1']);
  const ms = Date.now() - t0;
  t.equal(r.code, EXIT_FAILED, 'exit 1');
  t.match(r.stderr, /no node answered Information\.Info within 1 s/);
  oneLine(t, r.stderr, 'timeout');
  t.ok(ms < 8000, `returned after ${ms} ms (limit 1 s plus start-up)`);
  t.ok(hung.length >= 1, 'the per-node call was made and left hanging');

  answerA = true;
  const partial = await run(CRAWL, ['--port', port, '--json', '--timeout', '1.5']);
  t.equal(partial.code, EXIT_FAILED, 'a partial crawl: exit 1');
  t.equal(JSON.parse(partial.stdout)['Total Nodes'], 1, 'the statistics of what was reached are printed');
  t.equal(partial.stderr, 'crawl: stopped after the --timeout of 1.5 s: 1 nodes crawled, 1 not yet\n');

  for (const bad of ['0', '-1', 'abc', '1e3', '90000']) {
    const b = await run(CRAWL, ['--port', port, '--timeout', bad]);
    t.equal(b.code, EXIT_BAD_INPUT, `--timeout ${bad}: exit 2`);
    t.match(b.stderr, /--timeout must be/);
  }
  const usage = await run(CRAWL, ['--help']);
  t.match(usage.stdout, /--timeout S/, 'usage names the option as it works');
  t.equal((await run(CRAWL, ['stray'])).code, EXIT_BAD_INPUT);
});

t.test('brunet-ca: usage and hints agree on --force; exit codes', async (t) => {
  const dir = tempDir(t);
  const ca = join(dir, 'ca');
  const help = await run(CA, ['--help']);
  t.match(help.stdout, /brunet-ca init [^\n]*\[--force\]/, 'init lists --force');
  t.match(help.stdout, /brunet-ca sign [^\n]*\[--force\]/, 'sign lists --force');
  t.equal((await run(CA, ['init', '--dir', ca])).code, EXIT_OK);
  const key1 = readFileSync(join(ca, 'ca.key'));
  const again = await run(CA, ['init', '--dir', ca]);
  t.equal(again.code, EXIT_FAILED, 'a second init is refused');
  t.match(again.stderr, /--force replaces it/, 'the refusal names --force');
  t.same(readFileSync(join(ca, 'ca.key')), key1, 'the key is untouched');
  t.equal((await run(CA, ['init', '--dir', ca, '--force'])).code, EXIT_OK, 'init --force');
  t.notSame(readFileSync(join(ca, 'ca.key')), key1, '--force replaced the key');

  const pub = Buffer.alloc(32, 7).toString('base64');
  const cert = join(dir, 'm.cert');
  t.equal((await run(CA, ['sign', '--dir', ca, '--pub', pub, '--name', 'm', '--out', cert])).code, EXIT_OK);
  const twice = await run(CA, ['sign', '--dir', ca, '--pub', pub, '--name', 'm', '--out', cert]);
  t.equal(twice.code, EXIT_FAILED);
  t.match(twice.stderr, /use --force to replace it/);
  t.equal((await run(CA, ['sign', '--dir', ca, '--pub', pub, '--name', 'm2', '--out', cert, '--force'])).code, EXIT_OK, 'sign --force');
  t.match((await run(CA, ['show', cert])).stdout, /name: m2/);

  for (const [what, args] of [['no command', []], ['unknown command', ['frob']], ['--force on revoke', ['revoke', '--dir', ca, '--serial', '1', '--force']],
    ['bad --pub', ['sign', '--dir', ca, '--pub', 'x', '--name', 'n', '--out', cert]]] as const) {
    const r = await run(CA, [...args]);
    t.equal(r.code, EXIT_BAD_INPUT, `${what}: exit 2`);
  }
  const noKey = await run(CA, ['sign', '--dir', join(dir, 'none'), '--pub', pub, '--name', 'n', '--out', join(dir, 'n.cert')]);
  t.equal(noKey.code, EXIT_FAILED, 'a missing CA key: exit 1');
  t.notOk(existsSync(join(dir, 'n.cert')));
});

t.test('against a running node', async (t) => {
  const { dir, cfg, control } = await loopbackConfig(t, 'exittest');
  const p = startNodeProcess(t, [cfg, '--nodes', '4']);
  t.ok(await waitOutput(p, /control API http/, 10_000), 'node process up');
  const port = ['--port', String(control)];

  t.test('bput prints what it stored; exit 0', async (t) => {
    const r = await run(BPUT, [...port, '--ttl', '600', 'greeting', 'hello']);
    t.equal(r.code, EXIT_OK, r.stderr);
    t.equal(r.stdout, 'stored "greeting": 5 bytes, ttl 600 s; a majority of replicas accepted it\n');
    const c = await run(BPUT, [...port, '--create', 'owner', 'alice']);
    t.match(c.stdout, /^stored "owner" \(create\): 5 bytes, ttl 86400 s; a majority of replicas accepted it\n$/);
    const big = await run(BPUT, [...port, '--ttl', '9999999', 'long', 'x']);
    t.match(big.stdout, /1 byte, ttl 9999999 s \(nodes cap it at their Dht\/MaxTtl, 604800 s by default\)/);
    t.equal((await run(BGET, [...port, '--quiet', 'greeting'])).stdout, 'hello\n');
  });

  t.test('bget: 2 for an oversized key, 1 for a missing key', async (t) => {
    const big = await run(BGET, [...port, 'k'.repeat(257)]);
    t.equal(big.code, EXIT_BAD_INPUT, 'oversized key: exit 2');
    t.equal(big.stderr, 'bget: the key is 257 bytes; the limit is 256\n');
    const none = await run(BGET, [...port, 'no-such-key']);
    t.equal(none.code, EXIT_FAILED, 'no value: exit 1');
    t.equal(none.stderr, 'bget: no value for no-such-key\n');
    t.equal((await run(BGET, [...port, 'k'.repeat(256)])).code, EXIT_FAILED, 'a key at the limit is asked for');
  });

  t.test('bput: empty values refused with exit 2, one line', async (t) => {
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    const cases: [string, Promise<{ code: number | null; stderr: string }>, RegExp][] = [
      ['empty argument', run(BPUT, [...port, 'k', '']), /^bput: the value is empty\n$/],
      ['empty file', run(BPUT, [...port, '--input', empty, 'k']), /the value is empty \(.*empty has no bytes\)/],
      ['empty stdin', bputShell([...port, '--input', '-', 'k'], '< /dev/null'), /the value is empty \(standard input has no bytes\)/],
    ];
    for (const [name, pr, re] of cases) {
      const r = await pr;
      t.equal(r.code, EXIT_BAD_INPUT, `${name}: exit 2`);
      t.match(r.stderr, re, name);
      oneLine(t, r.stderr, name);
    }
    t.equal((await run(BGET, [...port, 'k'])).code, EXIT_FAILED, 'nothing was stored');
  });

  t.test('bput: endless or huge input refused after a bounded read, exit 2', async (t) => {
    const cases: [string, string[], string][] = [
      ['--input - < /dev/zero', ['--input', '-', 'z'], '< /dev/zero'],
      ['--input /dev/zero', ['--input', '/dev/zero', 'z'], ''],
      ['an endless pipe', ['--input', '-', 'z'], 'yes |'],
    ];
    for (const [name, args, stdin] of cases) {
      const r = await bputShell([...port, ...args], stdin);
      t.equal(r.code, EXIT_BAD_INPUT, `${name}: exit 2`);
      t.match(r.stderr, /is larger than the limit of 1024 bytes/, name);
      oneLine(t, r.stderr, name);
      t.ok(r.ms < 10_000, `${name}: ${r.ms} ms`);
    }
    const big = join(dir, 'big');
    writeFileSync(big, Buffer.alloc(1025, 1));
    const f = await run(BPUT, [...port, '--input', big, 'z']);
    t.equal(f.code, EXIT_BAD_INPUT, 'a 1,025-byte file');
    t.match(f.stderr, /big\) is larger than the limit of 1024 bytes/);
    const missing = await run(BPUT, [...port, '--input', join(dir, 'nope'), 'z']);
    t.equal(missing.code, EXIT_BAD_INPUT, 'a missing input file');
    t.match(missing.stderr, /cannot read .*nope: ENOENT/);
    writeFileSync(big, Buffer.alloc(1024, 1));
    t.equal((await run(BPUT, [...port, '--input', big, 'z'])).code, EXIT_OK, 'exactly 1,024 bytes are stored');
  });

  t.test('bput: an existing value under --create exits 1', async (t) => {
    t.equal((await run(BPUT, [...port, '--create', 'mine', 'a'])).code, EXIT_OK);
    const r = await run(BPUT, [...port, '--create', 'mine', 'b']);
    t.equal(r.code, EXIT_FAILED);
    t.match(r.stderr, /^bput: already exists: /);
  });

  t.test('XML-RPC and JSON DhtClient.Put / Create refuse an empty value', async (t) => {
    const post = (path: string, body: string) => new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: control, path, method: 'POST', timeout: 10_000 }, (res) => {
        let out = '';
        res.on('data', (c) => { out += c; });
        res.on('end', () => resolve(out));
      });
      req.on('timeout', () => req.destroy(new Error('no answer')));
      req.on('error', reject);
      req.end(body);
    });
    for (const [method, value] of [['DhtClient.Put', '<base64></base64>'], ['DhtClient.Put', '<string></string>'], ['DhtClient.Create', '<base64></base64>']]) {
      const xml = await post('/xm.rem', `<?xml version="1.0"?><methodCall><methodName>localproxy</methodName><params>
<param><value><string>${method}</string></value></param><param><value><string>emptykey</string></value></param>
<param><value>${value}</value></param><param><value><int>60</int></value></param></params></methodCall>`);
      t.match(xml, /<fault>/, `${method} ${value}: a fault`);
      t.match(xml, /-32012/, 'DhtCode.Invalid');
      t.match(xml, /the value is empty/);
    }
    const json = JSON.parse(await post('/json', JSON.stringify({ method: 'localproxy', params: ['DhtClient.Put', 'emptykey', '', 60] })));
    t.same(json.error, { code: -32012, message: 'the value is empty' });
    t.equal((await run(BGET, [...port, 'emptykey'])).code, EXIT_FAILED, 'nothing was stored');
  });

  t.test('crawl --timeout on a live ring: complete within the limit, exit 0', async (t) => {
    let r = await run(CRAWL, [...port, '--json', '--timeout', '20']);
    for (let i = 0; i < 20 && (r.code !== 0 || JSON.parse(r.stdout)['Total Nodes'] !== 4); i++) {
      await new Promise((res) => setTimeout(res, 500));
      r = await run(CRAWL, [...port, '--json', '--timeout', '20']);
    }
    t.equal(r.code, EXIT_OK, r.stderr);
    t.equal(JSON.parse(r.stdout)['Total Nodes'], 4);
  });
});
