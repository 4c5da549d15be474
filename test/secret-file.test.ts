// util/secret-file: atomic writes with an exact mode, exclusive creation that never
// replaces a key, and refusal of key files that are too open or not regular files; and
// the key files built on it (node identity, CA key).
import t, { type Test } from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CertificateAuthority, loadCaKey } from '../src/edge/ca/authority.js';
import { loadOrCreateIdentity } from '../src/edge/identity.js';
import { readSecretFile, SecretFileError, writeFileAtomic, writeSecretFile } from '../src/util/secret-file.js';

const ROOT = resolve(import.meta.dirname, '..');

function tempDir(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'brunet-secret-file-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function withUmask<T>(mask: number, f: () => T): T {
  const old = process.umask(mask);
  try { return f(); } finally { process.umask(old); }
}

const mode = (f: string) => statSync(f).mode & 0o777;

t.test('writeFileAtomic: exact mode whatever the umask, replaces by rename, leaves no temp file', async (t) => {
  const d = tempDir(t);
  const f = join(d, 'ca.pub');
  withUmask(0o077, () => writeFileAtomic(f, 'one'));
  t.equal(mode(f), 0o644, 'default 0644 despite umask 077');
  const ino = statSync(f).ino;
  withUmask(0, () => writeFileAtomic(f, new Uint8Array([1, 2, 3]), 0o640));
  t.same([...readFileSync(f)], [1, 2, 3], 'new contents');
  t.equal(mode(f), 0o640, 'the mode asked for');
  t.not(statSync(f).ino, ino, 'a new inode renamed over the old one, never a half-written file');
  t.same(readdirSync(d), ['ca.pub'], 'no temp file left');
  for (let i = 0; i < 20; i++) writeFileAtomic(f, `v${i}`); // same millisecond: temp names still unique
  t.equal(readFileSync(f, 'utf8'), 'v19');
  t.same(readdirSync(d), ['ca.pub']);
});

t.test('writeFileAtomic: a failure throws the fs error and leaves nothing behind', async (t) => {
  const d = tempDir(t);
  t.throws(() => writeFileAtomic(join(d, 'missing-dir', 'x'), 'x'), { code: 'ENOENT' });
  mkdirSync(join(d, 'target'));
  t.throws(() => writeFileAtomic(join(d, 'target'), 'x'), { code: 'EISDIR' }, 'cannot rename a file over a directory');
  t.same(readdirSync(d), ['target'], 'temp file removed');
});

t.test('writeSecretFile: 0600; exclusive never replaces an existing key', async (t) => {
  const d = tempDir(t);
  const f = join(d, 'node.key');
  withUmask(0, () => writeSecretFile(f, 'secret 1', { exclusive: true }));
  t.equal(mode(f), 0o600, '0600 even with umask 0');
  t.equal(readFileSync(f, 'utf8'), 'secret 1');
  t.throws(() => writeSecretFile(f, 'secret 2', { exclusive: true }), { code: 'EEXIST' });
  t.equal(readFileSync(f, 'utf8'), 'secret 1', 'existing key untouched');
  t.same(readdirSync(d), ['node.key'], 'no temp file left');
  chmodSync(f, 0o644);
  writeSecretFile(f, 'secret 3');
  t.equal(readFileSync(f, 'utf8'), 'secret 3', 'replaced when not exclusive');
  t.equal(mode(f), 0o600, 'and 0600 again');
});

t.test('readSecretFile: refuses files group or others can access, non-regular files, and FIFOs without blocking', async (t) => {
  const d = tempDir(t);
  const f = join(d, 'k');
  writeSecretFile(f, 'key text');
  t.equal(readSecretFile(f, 'identity file', 'private keys'), 'key text');
  for (const m of [0o640, 0o604, 0o620, 0o602]) {
    chmodSync(f, m);
    t.throws(() => readSecretFile(f, 'identity file', 'private keys'), {
      name: 'SecretFileError',
      message: `identity file ${f} has permissions 0${m.toString(8)}; it holds private keys and must be 0600 (chmod 600 ${f})`,
    }, `mode 0${m.toString(8)}`);
  }
  t.throws(() => readSecretFile(d, 'CA key', 'the CA private key'), { name: 'SecretFileError', message: `CA key ${d} is not a regular file` });
  const fifo = join(d, 'fifo');
  execFileSync('mkfifo', ['-m', '600', fifo]);
  const t0 = Date.now();
  t.throws(() => readSecretFile(fifo, 'CA key', 'the CA private key'), SecretFileError, 'a FIFO is refused');
  t.ok(Date.now() - t0 < 1000, 'without waiting for a writer');
  t.throws(() => readSecretFile(join(d, 'none'), 'CA key', 'x'), { code: 'ENOENT' }, 'I/O errors pass through');
});

t.test('key files: identity and CA key use the same rules', async (t) => {
  const d = tempDir(t);
  const idFile = join(d, 'sub', 'node.key');
  const id = withUmask(0, () => loadOrCreateIdentity(idFile));
  t.equal(mode(idFile), 0o600, 'identity created 0600');
  t.equal(statSync(join(d, 'sub')).mode & 0o777, 0o700, 'its new directory 0700');
  t.ok(loadOrCreateIdentity(idFile).address.equals(id.address), 'loaded again, not replaced');
  chmodSync(idFile, 0o644);
  t.throws(() => loadOrCreateIdentity(idFile), { name: 'IdentityError', message: /permissions 0644.*must be 0600/ });

  const caFile = join(d, 'ca.key');
  const ca = CertificateAuthority.generate('G');
  writeSecretFile(caFile, ca.serialize());
  t.same(loadCaKey(caFile).publicKey, ca.publicKey, 'CA key loads');
  chmodSync(caFile, 0o640);
  t.throws(() => loadCaKey(caFile), { name: 'CertificateError', message: /CA key .* has permissions 0640; it holds the CA private key/ });
  t.throws(() => loadCaKey(join(d, 'nope.key')), { name: 'CertificateError', message: `cannot read CA key ${join(d, 'nope.key')}: ENOENT` });
  const fifo = join(d, 'fifo.key');
  execFileSync('mkfifo', ['-m', '600', fifo]);
  t.throws(() => loadCaKey(fifo), { name: 'CertificateError', message: /is not a regular file/ }, 'a FIFO is refused, not read');
});

t.test('processes creating the same identity at once all end up with one key', async (t) => {
  const d = tempDir(t);
  const file = join(d, 'shared.key');
  const mod = join(ROOT, 'dist/src/edge/identity.js');
  const script = `import(${JSON.stringify(mod)}).then((m) => process.stdout.write(m.loadOrCreateIdentity(${JSON.stringify(file)}).address.toString()))`;
  const run = () => new Promise<string>((res, rej) => {
    execFile(process.execPath, ['-e', script], { timeout: 20_000 }, (err, out, errOut) => (err ? rej(new Error(`${err.message}: ${errOut}`)) : res(out)));
  });
  const addrs = await Promise.all([run(), run(), run(), run()]);
  t.equal(new Set(addrs).size, 1, `one identity for all: ${addrs[0]}`);
  t.equal(loadOrCreateIdentity(file).address.toString(), addrs[0], 'the one in the file');
  t.same(readdirSync(d), ['shared.key'], 'no temp files left');
});
