// Progress lines (src/util/progress.ts): shown on a terminal, nothing extra otherwise; and
// crawl through a pipe and through a pseudo-terminal (util-linux `script`).
import { execFile, spawnSync } from 'node:child_process';
import t from 'tap';
import { progress } from '../src/util/progress.js';
import { CRAWL, loopbackConfig, startNodeProcess, waitOutput } from './helpers/procs.js';

const fake = (isTTY: boolean) => {
  const out: string[] = [];
  return { out, stream: { isTTY, write: (s: string) => { out.push(s); return true; } } };
};

t.test('not a terminal: updates write nothing, notes are plain lines', async (t) => {
  const { out, stream } = fake(false);
  const p = progress(stream);
  p.update('crawled 1 nodes');
  p.done();
  p.note('phase 2...');
  p.update('crawled 2 nodes');
  t.same(out, ['phase 2...\n']);
});

t.test('a terminal: one rewritten line, throttled, cleared by done, kept under notes', async (t) => {
  const { out, stream } = fake(true);
  let now = 0;
  const p = progress(stream, { intervalMs: 100, now: () => now });
  p.note('before');
  p.update('a');
  now = 50; p.update('b (too soon)');
  now = 100; p.update('c');
  p.note('a step done');
  p.done();
  p.done();
  now = 120; p.update('d (after done: at once)');
  t.same(out, ['before\n', '\ra\x1b[K', '\rc\x1b[K', '\r\x1b[Ka step done\nc', '\r\x1b[K', '\rd (after done: at once)\x1b[K']);
});

t.test('crawl: quiet through a pipe, a progress line on a pseudo-terminal', async (t) => {
  const { cfg, control } = await loopbackConfig(t, 'progressns');
  const node = startNodeProcess(t, [cfg]);
  t.ok(await waitOutput(node, /control API http/, 30_000), node.output());
  const piped = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [CRAWL, '--port', String(control)], { timeout: 30_000, encoding: 'utf8' }, (e, stdout, stderr) =>
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr }));
  });
  t.equal(piped.code, 0, piped.stderr);
  t.equal(piped.stderr, '', 'nothing on stderr through a pipe');
  t.match(piped.stdout, /^Total Nodes: 1\n/);

  const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
  if (!hasScript) {
    t.ok(!process.env.CI, 'util-linux script is installed (needed in CI for the pseudo-terminal)');
    return;
  }
  // script runs the command on a pseudo-terminal and copies what it printed to our pipe.
  const tty = spawnSync('script', ['-qec', `${process.execPath} ${CRAWL} --port ${control}`, '/dev/null'], { encoding: 'utf8', timeout: 30_000 });
  t.equal(tty.status, 0, tty.stderr);
  t.match(tty.stdout, /\rcrawled 1 nodes, 0 pending\x1b\[K/, 'the progress line on the terminal');
  t.match(tty.stdout, /\r\x1b\[KTotal Nodes: 1/, 'cleared before the statistics');
  node.child.kill('SIGINT');
  t.equal(await node.exited, 0);
});
