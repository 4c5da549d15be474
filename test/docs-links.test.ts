// Every relative link in README.md and docs/*.md points to a file that exists and, when it
// names an anchor, to a heading of that file (GitHub's slugs).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pages = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

/** The text outside code fences and HTML comments, where links and headings count. */
function prose(md: string): string {
  return md.replace(/<!--[\s\S]*?-->/g, '').replace(/^```[\s\S]*?^```/gm, '');
}

/** GitHub's anchors: lower case, punctuation dropped, each space a hyphen, repeats numbered. */
export function anchors(md: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  for (const m of prose(md).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const text = m[1]!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/[`*_]/g, (c) => (c === '_' ? '_' : ''));
    const base = text.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

t.test('GitHub slugs as the links expect them', async (t) => {
  const a = anchors('# 1.5 Secure edges (`src/edge/secure-wire.ts`)\n## VPN (`npm run bench:vpn`, root)\n## VPN (`npm run bench:vpn`, root)\n```\n# not a heading\n```\n');
  t.same([...a], ['15-secure-edges-srcedgesecure-wirets', 'vpn-npm-run-benchvpn-root', 'vpn-npm-run-benchvpn-root-1']);
});

t.test('every relative link in README.md and docs/ resolves', async (t) => {
  const cache = new Map<string, Set<string>>();
  let checked = 0;
  for (const page of pages) {
    const text = prose(readFileSync(join(root, page), 'utf8'));
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/i.test(target)) continue; // http:, https:, mailto:
      const [path, anchor] = target.split('#') as [string, string | undefined];
      const file = path === '' ? join(root, page) : resolve(dirname(join(root, page)), path);
      const where = `${page} → ${target}`;
      checked++;
      if (!existsSync(file)) { t.fail(`${where}: no such file`); continue; }
      if (anchor === undefined) continue;
      if (statSync(file).isDirectory() || !file.endsWith('.md')) { t.fail(`${where}: an anchor into a non-Markdown file`); continue; }
      const key = relative(root, file);
      if (!cache.has(key)) cache.set(key, anchors(readFileSync(file, 'utf8')));
      t.ok(cache.get(key)!.has(anchor), `${where}: anchor exists`);
    }
  }
  t.ok(checked > 40, `${checked} links checked`);
});
