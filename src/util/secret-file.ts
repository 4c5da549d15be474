// Files other processes read while we replace them (certificates, revocation lists,
// configs) and files holding private keys (node identities, the CA key).
//
// writeFileAtomic never leaves a half-written file: it writes a temp file in the same
// directory with the exact mode (whatever the umask), fsyncs it, then renames it over the
// target, or, when `exclusive`, hard-links it to the target so an existing file is never
// replaced (EEXIST) and a concurrent reader never sees a partial file.
// Private-key files are written 0600 and refused when group or others may read or write
// them, like ssh does.
import fs from 'node:fs';
import path from 'node:path';

export const SECRET_FILE_MODE = 0o600;

/** A key file that must not be used: not a regular file, or too open. */
export class SecretFileError extends Error {
  override name = 'SecretFileError';
}

let tmpCounter = 0;

/**
 * Writes `data` to `file` atomically with exactly `mode`: temp file + rename, or with
 * `exclusive` temp file + link, which fails with EEXIST if `file` exists. Throws the fs error.
 */
export function writeFileAtomic(file: string, data: Uint8Array | string, mode = 0o644, o: { exclusive?: boolean } = {}): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now()}.${tmpCounter++}.tmp`);
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, SECRET_FILE_MODE);
  try {
    try {
      fs.fchmodSync(fd, mode); // exact mode, regardless of the umask
      fs.writeFileSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (o.exclusive) fs.linkSync(tmp, file);
    else fs.renameSync(tmp, file);
  } catch (e) {
    try { fs.unlinkSync(tmp); } catch { /* best effort */ }
    throw e;
  }
  if (o.exclusive) {
    try { fs.unlinkSync(tmp); } catch { /* best effort: a stray temp file, the key is in place */ }
  }
}

/** Writes a private-key file: atomically, mode 0600. */
export function writeSecretFile(file: string, data: Uint8Array | string, o: { exclusive?: boolean } = {}): void {
  writeFileAtomic(file, data, SECRET_FILE_MODE, o);
}

/**
 * Reads a private-key file as UTF-8. `what` names it in errors ("identity file") and
 * `holds` says what it holds ("private keys"). Throws SecretFileError if it is not a
 * regular file or group/others may access it; I/O errors are thrown as they are.
 */
export function readSecretFile(file: string, what: string, holds: string): string {
  // O_NONBLOCK: a FIFO planted at the path must not hang us before fstat refuses it.
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new SecretFileError(`${what} ${file} is not a regular file`);
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
      throw new SecretFileError(`${what} ${file} has permissions ${mode}; it holds ${holds} and must be 0600 (chmod 600 ${file})`);
    }
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}
