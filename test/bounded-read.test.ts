// readBounded / readBoundedSync: whole files up to the limit, TooLargeError past it, and never
// more than limit + 1 bytes read, so /dev/zero, endless pipes and stdin ('-') fail at once.
import t from 'tap';
import { spawn } from 'node:child_process';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readBounded, readBoundedSync, TooLargeError } from '../src/util/bounded-read.js';
import { ROOT, tempDir } from './helpers/procs.js';

const LIB = join(ROOT, 'dist/src/util/bounded-read.js');

/** Runs readBounded('-', max) in a child with the given stdin; prints the size or the error. */
function viaStdin(stdin: 'pipe' | number, max: number, input?: Buffer): Promise<{ code: number | null; out: string }> {
  const code = `import { readBounded } from ${JSON.stringify(LIB)};
    readBounded('-', ${max}).then((b) => console.log('read', b.length, b.subarray(0, 5).toString('hex')), (e) => { console.log(e.name, e.message); process.exit(3); });`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: [stdin, 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d) => { out += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('exit', (c) => { clearTimeout(timer); resolve({ code: c, out: out.trim() }); });
    if (stdin === 'pipe') {
      child.stdin!.on('error', () => {}); // the reader may stop before all is written
      child.stdin!.end(input);
    }
  });
}

t.test('files: up to the limit, then TooLargeError', async (t) => {
  const d = tempDir(t);
  const f = join(d, 'f');
  writeFileSync(f, Buffer.alloc(100_000, 7));
  t.equal((await readBounded(f, 100_000)).length, 100_000, 'exactly the limit');
  t.equal(readBoundedSync(f, 100_000).length, 100_000, 'sync: exactly the limit');
  t.same(await readBounded(f, 1_000_000), Buffer.alloc(100_000, 7), 'content intact');
  await t.rejects(readBounded(f, 99_999), TooLargeError, 'one byte over');
  t.throws(() => readBoundedSync(f, 99_999), TooLargeError, 'sync: one byte over');
  writeFileSync(f, '');
  t.equal((await readBounded(f, 10)).length, 0, 'empty file');
  await t.rejects(readBounded(join(d, 'missing'), 10), { code: 'ENOENT' }, 'a missing file keeps its errno');
  t.throws(() => readBoundedSync(d, 10), { code: 'EISDIR' }, 'a directory keeps its errno');
});

t.test('/dev/zero fails at once', async (t) => {
  const started = Date.now();
  await t.rejects(readBounded('/dev/zero', 1 << 20), new TooLargeError('/dev/zero', 1 << 20));
  t.throws(() => readBoundedSync('/dev/zero', 1 << 20), /\/dev\/zero is larger than 1048576 bytes/);
  t.ok(Date.now() - started < 5000, 'within 5 s');
});

t.test("'-' reads standard input, bounded", async (t) => {
  t.same(await viaStdin('pipe', 10, Buffer.from('hello')), { code: 0, out: 'read 5 68656c6c6f' }, 'a small pipe');
  t.same(await viaStdin('pipe', 5, Buffer.from('hello')), { code: 0, out: 'read 5 68656c6c6f' }, 'exactly the limit');
  const over = await viaStdin('pipe', 4, Buffer.from('hello'));
  t.same(over, { code: 3, out: 'TooLargeError standard input is larger than 4 bytes' }, 'one byte over');
  const fd = openSync('/dev/zero', 'r');
  t.teardown(() => closeSync(fd));
  const zero = await viaStdin(fd, 1 << 20);
  t.same(zero, { code: 3, out: 'TooLargeError standard input is larger than 1048576 bytes' }, 'stdin from /dev/zero');
  const endless = await viaStdin('pipe', 1 << 20, Buffer.alloc(8 << 20));
  t.equal(endless.code, 3, 'a pipe longer than the limit');
});
