// bget/bput end to end against one run_bootstrap_node process of 4 nodes (in-memory DHT).
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freeTcpPort } from './helpers/ports.js';
import { loopbackConfig, ROOT, run, startNodeProcess, waitOutput } from './helpers/procs.js';

const BGET = join(ROOT, 'dist/tools/bget.js');
const BPUT = join(ROOT, 'dist/tools/bput.js');

/** Runs bput with `input` on stdin (run() has no stdin); bounded like run(). */
function bputStdin(args: string[], input: Buffer): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BPUT, ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr!.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => c.kill('SIGKILL'), 15_000);
    c.on('exit', (code) => { clearTimeout(timer); resolve({ code, stderr }); });
    c.stdin!.end(input);
  });
}

const oneLine = (t: Test, s: string) => {
  t.equal(s.trim().split('\n').length, 1, 'one line');
  t.notMatch(s, /\n\s+at /, 'no stack trace');
};

t.test('bget/bput', async (t) => {
  const { dir, cfg, control } = await loopbackConfig(t, 'bgettest');
  const p = startNodeProcess(t, [cfg, '--nodes', '4']);
  t.ok(await waitOutput(p, /control API http/, 10_000), 'node process up');
  const port = ['--port', String(control)];

  t.test('text value: plain, --quiet, --json', async (t) => {
    t.equal((await run(BPUT, [...port, 'greeting', 'hello world'])).code, 0);
    const r = await run(BGET, [...port, 'greeting']);
    t.equal(r.code, 0);
    t.match(r.stdout, /^hello world\tttl=\d+\tage=\d+\n$/);
    t.equal((await run(BGET, [...port, '--quiet', 'greeting'])).stdout, 'hello world\n');
    const j = JSON.parse((await run(BGET, [...port, '--json', 'greeting'])).stdout);
    t.equal(j.length, 1);
    t.equal(j[0].value, 'hello world');
    t.ok(j[0].ttl > 0 && j[0].ttl <= 86400 && typeof j[0].age === 'number');
  });

  t.test('multi-value put: both values returned', async (t) => {
    t.equal((await run(BPUT, [...port, '--ttl', '600', 'multi', 'one'])).code, 0);
    t.equal((await run(BPUT, [...port, '--ttl', '600', 'multi', 'two'])).code, 0);
    const r = await run(BGET, [...port, '--quiet', 'multi']);
    t.same(r.stdout.trim().split('\n').sort(), ['one', 'two']);
  });

  t.test('--create: same value succeeds, different value is refused', async (t) => {
    t.equal((await run(BPUT, [...port, '--create', 'owner', 'alice'])).code, 0);
    t.equal((await run(BPUT, [...port, '--create', 'owner', 'alice'])).code, 0, 'identical value');
    const r = await run(BPUT, [...port, '--create', 'owner', 'bob']);
    t.equal(r.code, 1);
    t.match(r.stderr, /^bput: already exists: /);
    oneLine(t, r.stderr);
    t.equal((await run(BGET, [...port, '--quiet', 'owner'])).stdout, 'alice\n');
  });

  t.test('binary values byte-exact via --input FILE, --input - and --output FILE', async (t) => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const inFile = join(dir, 'in.bin'), outFile = join(dir, 'out.bin');
    writeFileSync(inFile, bytes);
    t.equal((await run(BPUT, [...port, '--input', inFile, 'bin'])).code, 0);
    const r = await run(BGET, [...port, '--output', outFile, 'bin']);
    t.equal(r.code, 0);
    t.equal(r.stdout, '', 'nothing printed');
    t.same(readFileSync(outFile), bytes, 'identical bytes');
    t.match((await run(BGET, [...port, '--quiet', 'bin'])).stdout, /^base64:[A-Za-z0-9+/=]+\n$/);

    const piped = Buffer.from([0, 10, 255, 1, 13, 10]);
    const s = await bputStdin([...port, '--input', '-', 'piped'], piped);
    t.equal(s.code, 0, s.stderr);
    t.equal((await run(BGET, [...port, '--output', outFile, 'piped'])).code, 0);
    t.same(readFileSync(outFile), piped);
  });

  t.test('usage and validation errors: exit 2 before calling', async (t) => {
    const cases: [string, string[], RegExp][] = [
      ['bget missing key', [BGET, ...port], /missing key/],
      ['bput missing key', [BPUT, ...port], /missing key/],
      ['bget bad port', [BGET, '--port', 'x', 'k'], /--port/],
      ['bget unknown option', [BGET, ...port, '--nope', 'k'], /nope/],
      ['empty key', [BPUT, ...port, '', 'v'], /key is empty/],
      ['2 KB value', [BPUT, ...port, 'big', 'x'.repeat(2048)], /2048 bytes; the limit is 1024/],
      ['value and --input', [BPUT, ...port, '--input', '-', 'k', 'v'], /exactly one/],
      ['TTL -5', [BPUT, ...port, '--ttl', '-5', 'k', 'v'], /--ttl must be a positive/],
      ['TTL 0', [BPUT, ...port, '--ttl', '0', 'k', 'v'], /--ttl must be a positive/],
      ['TTL abc', [BPUT, ...port, '--ttl', 'abc', 'k', 'v'], /--ttl must be a positive/],
      ['TTL 1.5', [BPUT, ...port, '--ttl', '1.5', 'k', 'v'], /--ttl must be a positive/],
    ];
    for (const [name, [file, ...args], re] of cases) {
      const r = await run(file!, args);
      t.equal(r.code, 2, `${name}: exit 2`);
      t.match(r.stderr, re, `${name}: message`);
      t.notMatch(r.stderr, /\n\s+at /, `${name}: no stack trace`);
    }
    t.equal((await run(BGET, [...port, 'big'])).code, 1, 'the 2 KB value was never stored');
  });

  t.test('runtime errors: exit 1 (no value) or 3 (nothing running), one line', async (t) => {
    const none = await run(BGET, [...port, 'no-such-key']);
    t.equal(none.code, 1);
    t.equal(none.stderr, 'bget: no value for no-such-key\n');
    const dead = await freeTcpPort();
    for (const [file, args] of [[BGET, ['k']], [BPUT, ['k', 'v']]] as const) {
      const r = await run(file, ['--port', String(dead), ...args]);
      t.equal(r.code, 3);
      t.match(r.stderr, /nothing listens on 127\.0\.0\.1/);
      oneLine(t, r.stderr);
    }
  });
});
