// The layering rule from the developers' guide, enforced: parses the import and re-export
// statements of every file in src/ and tools/ and fails on an import from a lower layer into
// a higher one (type imports included: a lower layer does not even know a higher one's
// types), and on any runtime import cycle (`import type` and all-`type` specifier lists are
// erased by tsc, so they do not count there).
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

// The layers, lowest first, as the code stands: a file may import from its own layer and
// from any lower one. Directories on one line share a layer.
//   0 util, wire       clock, log, random, bytes; the wire value codec
//   1 address          ring addresses
//   2 transport        edges and listeners: memory, UDP, TCP; TAs
//   3 edge, config     secure edges (certificates, handshake); XML configuration readers
//   4 connection       link layer, connection table, overlords, relay tunnels
//   5 routing          greedy ring routing (AHPacket)
//   6 rpc              request/reply over routing
//   7 node             a node assembled from the layers above; ConnectTo
//   8 dht, control     services on a node: the DHT; the control API (XML-RPC, JSON)
//   9 vpn              IPOP: the VPN on a node and its DHT
//  10 cli, tools       programs
const LAYERS: Record<string, number> = {
  'src/util': 0, 'src/wire': 0,
  'src/address': 1,
  'src/transport': 2,
  'src/edge': 3, 'src/config': 3,
  'src/connection': 4,
  'src/routing': 5,
  'src/rpc': 6,
  'src/node': 7,
  'src/dht': 8, 'src/control': 8,
  'src/vpn': 9,
  'src/cli': 10, 'tools': 10,
};

// Runtime cycles tolerated for now, each as its sorted member files: none.
const ALLOWED_CYCLES = new Set<string>([]);

interface Import { from: string; to: string; typeOnly: boolean; line: number }

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** The layer of a file: its longest matching directory in LAYERS. */
function layerOf(file: string): { dir: string; layer: number } | undefined {
  const dir = Object.keys(LAYERS).filter((d) => file.startsWith(d + '/')).sort((a, b) => b.length - a.length)[0];
  return dir === undefined ? undefined : { dir, layer: LAYERS[dir]! };
}

/** The project-relative imports of one file: static imports, re-exports and import() calls. */
function importsOf(file: string): Import[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: Import[] = [];
  const add = (spec: ts.Expression, typeOnly: boolean, node: ts.Node) => {
    if (!ts.isStringLiteral(spec) || !spec.text.startsWith('.')) return;
    const to = relative(ROOT, resolve(ROOT, dirname(file), spec.text)).replace(/\.js$/, '.ts');
    out.push({ from: file, to, typeOnly, line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1 });
  };
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n)) {
      const c = n.importClause;
      const named = c?.namedBindings && ts.isNamedImports(c.namedBindings) ? c.namedBindings.elements : undefined;
      // Erased by tsc: `import type …`, and `import { type A, type B }` with no default import.
      const typeOnly = !!c && (c.isTypeOnly || (!c.name && !!named && named.length > 0 && named.every((e) => e.isTypeOnly)));
      add(n.moduleSpecifier, typeOnly, n);
    } else if (ts.isExportDeclaration(n) && n.moduleSpecifier) {
      const named = n.exportClause && ts.isNamedExports(n.exportClause) ? n.exportClause.elements : undefined;
      add(n.moduleSpecifier, n.isTypeOnly || (!!named && named.length > 0 && named.every((e) => e.isTypeOnly)), n);
    } else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword && n.arguments[0]) {
      add(n.arguments[0], false, n);
    } else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument)) {
      add(n.argument.literal as ts.Expression, true, n);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/** Strongly connected components of more than one file, or a file importing itself (Tarjan). */
function cycles(files: string[], edges: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>(), low = new Map<string, number>(), onStack = new Set<string>(), stack: string[] = [];
  const found: string[][] = [];
  const strong = (v: string): void => {
    index.set(v, next); low.set(v, next); next++;
    stack.push(v); onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) { strong(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do { w = stack.pop()!; onStack.delete(w); scc.push(w); } while (w !== v);
    if (scc.length > 1 || (edges.get(v) ?? []).includes(v)) found.push(scc.sort());
  };
  for (const f of files) if (!index.has(f)) strong(f);
  return found;
}

const files = [...sourceFiles('src'), ...sourceFiles('tools')].sort();
const imports = files.flatMap(importsOf);

t.test('every source file has a layer, and every import resolves to a source file', async (t) => {
  t.ok(files.length > 50, `${files.length} files parsed`);
  t.ok(imports.length > 200, `${imports.length} imports parsed`);
  const known = new Set(files);
  t.same(files.filter((f) => !layerOf(f)), [], 'no file outside the layer table (add its directory to LAYERS)');
  t.same(imports.filter((i) => !known.has(i.to)).map((i) => `${i.from}:${i.line} → ${i.to}`), [], 'no import of a missing file');
});

t.test('no layer imports a higher one', async (t) => {
  const bad = imports.filter((i) => {
    const a = layerOf(i.from), b = layerOf(i.to);
    return a && b && b.layer > a.layer;
  }).map((i) => `${i.from}:${i.line} (${layerOf(i.from)!.dir}) imports ${i.to} (${layerOf(i.to)!.dir})`);
  t.same(bad, [], 'imports go down the layers only');
});

t.test('no runtime import cycle', async (t) => {
  const edges = new Map<string, string[]>();
  for (const i of imports) if (!i.typeOnly) edges.set(i.from, [...(edges.get(i.from) ?? []), i.to]);
  const found = cycles(files, edges).map((c) => c.join(' '));
  t.same(found.filter((c) => !ALLOWED_CYCLES.has(c)), [], 'no import cycle outside the allow-list');
  for (const c of ALLOWED_CYCLES) t.ok(found.includes(c), `allow-listed cycle still exists (delete its entry once it is gone): ${c}`);
});

t.test('the checker itself finds a cycle and classifies imports', async (t) => {
  const edges = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['d']], ['e', ['a']]]);
  t.same(cycles(['a', 'b', 'c', 'd', 'e'], edges), [['a', 'b', 'c'], ['d']], 'a three-file loop and a self-import; e only leads into one');
  const link = importsOf('src/connection/link-manager.ts');
  t.ok(link.some((i) => i.to === 'src/address/address.ts' && i.typeOnly), '`import type` is type-only');
  t.ok(link.some((i) => i.to === 'src/wire/value.ts' && !i.typeOnly), 'a value import is a runtime import');
  t.ok(link.some((i) => i.to === 'src/connection/link-wire.ts' && !i.typeOnly), 'a mixed import (values and `type` names) is a runtime import');
});
