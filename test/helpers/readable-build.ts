// A copy of the compiled package (dist/src, the TAP addon, package.json) in a fresh temporary
// directory that every user can read, for a child process that drops its privileges (to
// nobody): the clone itself may sit in a directory only root can enter (/root, mktemp -d).
// npm test builds dist/ first.
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PARTS = ['package.json', 'binding.gyp', 'build/Release/tap.node', 'dist/src'];

/** Directories 0755, files 0644 (0755 if executable): readable whatever the umask was. */
function openUp(path: string): void {
  const st = statSync(path);
  if (st.isDirectory()) {
    chmodSync(path, 0o755);
    for (const e of readdirSync(path)) openUp(join(path, e));
  } else {
    chmodSync(path, st.mode & 0o111 ? 0o755 : 0o644);
  }
}

/** Copies the parts of the built package under root (and `extra` ones, e.g. dist/bench) into a new world-readable directory. */
export function readableBuild(root: string, extra: string[] = []): { dir: string; remove(): void } {
  const parts = [...PARTS, ...extra];
  for (const p of parts) {
    if (!existsSync(join(root, p))) throw new Error(`${join(root, p)} is missing: run npm run build (npm ci builds the TAP addon)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'brunet-readable-'));
  try {
    for (const p of parts) cpSync(join(root, p), join(dir, p), { recursive: true });
    openUp(dir);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
