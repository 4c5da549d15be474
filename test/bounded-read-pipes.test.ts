// readBounded: reads a file, a device, a named pipe or stdin up to the limit + 1 byte and no further.
import t from 'tap';
import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readBounded, TooLargeError } from '../src/util/bounded-read.js';
import { ROOT, tempDir } from './helpers/procs.js';

t.test('files: up to the limit read whole, one byte more refused', async (t) => {
  const dir = tempDir(t);
  const exact = join(dir, 'exact'), over = join(dir, 'over'), empty = join(dir, 'empty');
  const bytes = Buffer.from(Array.from({ length: 1024 }, (_, i) => i % 251));
  writeFileSync(exact, bytes);
  writeFileSync(over, Buffer.concat([bytes, Buffer.from([7])]));
  writeFileSync(empty, '');
  t.same(await readBounded(exact, 1024), bytes, 'exactly the limit: every byte');
  t.same(await readBounded(empty, 1024), Buffer.alloc(0), 'an empty file is empty');
  t.same(await readBounded(exact, 200_000), bytes, 'a limit above the chunk size');
  const e = await readBounded(over, 1024).then(() => undefined, (x: unknown) => x);
  t.ok(e instanceof TooLargeError, 'limit + 1 bytes: TooLargeError');
  t.equal((e as TooLargeError).maxBytes, 1024);
  t.match((e as Error).message, /larger than 1024 bytes/);
  t.same(await readBounded(over, 0).catch((x: unknown) => x instanceof TooLargeError), true, 'limit 0');
  await t.rejects(readBounded(join(dir, 'missing'), 10), { code: 'ENOENT' }, 'a missing file is the system error');
  await t.rejects(readBounded(exact, -1), RangeError);
});

t.test('/dev/zero is refused after limit + 1 bytes, at once', async (t) => {
  const t0 = Date.now();
  await t.rejects(readBounded('/dev/zero', 1024), TooLargeError);
  await t.rejects(readBounded('/dev/zero', 1_000_000), TooLargeError);
  t.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
});

t.test('a named pipe whose writer never stops is refused', async (t) => {
  const dir = tempDir(t);
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  // `yes` writes forever; it ends with SIGPIPE once the reader has closed the pipe.
  const writer = spawn('sh', ['-c', `exec yes > '${fifo}'`], { stdio: 'ignore' });
  t.teardown(() => { if (writer.exitCode === null && writer.signalCode === null) writer.kill('SIGKILL'); });
  await t.rejects(readBounded(fifo, 4096), TooLargeError);
  const ended = await new Promise<boolean>((r) => {
    const timer = setTimeout(() => r(false), 5000);
    writer.on('exit', () => { clearTimeout(timer); r(true); });
    if (writer.exitCode !== null || writer.signalCode !== null) { clearTimeout(timer); r(true); }
  });
  t.ok(ended, 'the reader closed the pipe (the writer got SIGPIPE)');
});

t.test("'-' reads standard input, bounded, from a file, a device and an endless pipe", async (t) => {
  const dir = tempDir(t);
  const script = join(dir, 'read.mjs');
  writeFileSync(script, `import { readBounded, TooLargeError } from ${JSON.stringify(join(ROOT, 'dist/src/util/bounded-read.js'))};
try { const b = await readBounded('-', 1024); process.stdout.write('ok ' + b.length); }
catch (e) { process.stdout.write(e instanceof TooLargeError ? 'too large' : 'error ' + e.message); }
`);
  const input = join(dir, 'in');
  writeFileSync(input, 'x'.repeat(1000));
  const sh = (cmd: string) => execFileSync('sh', ['-c', cmd], { encoding: 'utf8', timeout: 10_000 });
  const node = JSON.stringify(process.execPath);
  t.equal(sh(`${node} ${script} < ${input}`), 'ok 1000', 'a file on stdin');
  t.equal(sh(`${node} ${script} < /dev/null`), 'ok 0', 'empty stdin');
  t.equal(sh(`${node} ${script} < /dev/zero`), 'too large', '/dev/zero on stdin');
  t.equal(sh(`yes | ${node} ${script}`), 'too large', 'an endless pipe on stdin');
  t.equal(sh(`head -c 1024 /dev/zero | ${node} ${script}`), 'ok 1024', 'a pipe of exactly the limit');
});
