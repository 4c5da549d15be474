// The native addon (native/, built by `npm ci` into build/Release/tap.node): the TAP, the
// batched UDP socket and the native flow table live in one module. Sources run from src/…
// (tests) and compiled code from dist/src/…, so the package root is found by walking up.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: the first directory up from here with package.json and binding.gyp. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'binding.gyp'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('package root (with binding.gyp) not found');
    dir = up;
  }
}

/**
 * The addon's exports, or an Error with a one-line reason when it cannot be loaded; `what`
 * names the part that needs it in that reason ("the TAP addon", "the addon").
 */
export function loadAddonModule(what = 'the addon'): Record<string, unknown> {
  const path = join(packageRoot(), 'build', 'Release', 'tap.node');
  if (!existsSync(path)) throw new Error(`${what} is not built (${path} missing: run npm install or npx node-gyp rebuild)`);
  return createRequire(import.meta.url)(path) as Record<string, unknown>;
}
