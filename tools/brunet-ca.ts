#!/usr/bin/env node
// brunet-ca: run a group certificate authority for CA-based membership (src/edge/ca/).
//   brunet-ca init --dir DIR [--name NAME] [--days N] [--force]   new CA: DIR/ca.key (0600), DIR/ca.pub;
//                                                            --force replaces an existing CA key
//   brunet-ca sign --dir DIR (--key NODE_KEY_FILE | --pub BASE64) --name NAME [--days N] --out CERT [--force]
//                                                            --force replaces an existing CERT
//   brunet-ca revoke --dir DIR (--cert CERT | --serial HEX) [--list FILE]   default list DIR/revoked.list
//   brunet-ca show FILE [--ca CA_PUB]                        a certificate, CA certificate or revocation list
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createCa, loadCaKey, signMember, signRevocations } from '../src/edge/ca/authority.js';
import { EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK } from '../src/cli/exit.js';
import {
  CERT_MAGIC, KIND_CA, decodeCertificate, fileBytes, formatSerial, kindName, parseSerial, readCertificateFile,
} from '../src/edge/ca/certificate.js';
import { REVOCATION_MAGIC, decodeRevocations } from '../src/edge/ca/crl.js';
import { CertificateError } from '../src/edge/ca/errors.js';
import { loadCaCertificate, readCaCertificate, verifyCertificate, verifyRevocations } from '../src/edge/ca/verify.js';
import { addressOf, Identity, IdentityError } from '../src/edge/identity.js';
import { writeFileAtomic, writeSecretFile } from '../src/util/secret-file.js';

const USAGE = `usage: brunet-ca init --dir DIR [--name NAME] [--days N] [--force]
       brunet-ca sign --dir DIR (--key NODE_KEY_FILE | --pub BASE64) --name NAME [--days N] --out CERT [--force]
       brunet-ca revoke --dir DIR (--cert CERT | --serial HEX) [--list FILE]
       brunet-ca show FILE [--ca CA_PUB]`;
const DEFAULT_MEMBER_DAYS = 365;

class UsageError extends Error {}
class Failure extends Error {}

const OPTIONS = {
  dir: { type: 'string' }, name: { type: 'string' }, days: { type: 'string' }, key: { type: 'string' }, pub: { type: 'string' },
  out: { type: 'string' }, cert: { type: 'string' }, serial: { type: 'string' }, list: { type: 'string' }, ca: { type: 'string' },
  force: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
} as const;
type Values = { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

const ALLOWED: Record<string, (keyof typeof OPTIONS)[]> = {
  init: ['dir', 'name', 'days', 'force'],
  sign: ['dir', 'key', 'pub', 'name', 'days', 'out', 'force'],
  revoke: ['dir', 'cert', 'serial', 'list'],
  show: ['ca'],
};

function need(v: Values, k: keyof typeof OPTIONS, cmd: string): string {
  const x = v[k];
  if (typeof x !== 'string' || x === '') throw new UsageError(`${cmd}: --${k} is required`);
  return x;
}

function days(v: Values, dflt: number): number {
  if (v.days === undefined) return dflt;
  const n = Number(v.days);
  if (!Number.isFinite(n) || n <= 0 || n > 36500) throw new UsageError('--days must be a positive number of days (at most 36500)');
  return n;
}

function ts(ms: number): string { return new Date(ms).toISOString(); }
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function describe(e: unknown): string {
  const c = (e as NodeJS.ErrnoException).code;
  return c && typeof c === 'string' && /^E[A-Z]+$/.test(c) ? `${c} (${(e as Error).message.split(',')[0]})` : (e as Error).message;
}

function caFiles(dir: string): { key: string; pub: string; list: string } {
  return { key: path.join(dir, 'ca.key'), pub: path.join(dir, 'ca.pub'), list: path.join(dir, 'revoked.list') };
}

function cmdInit(v: Values): string {
  const dir = need(v, 'dir', 'init');
  const name = v.name ?? path.basename(path.resolve(dir));
  const { ca, certificate } = createCa(name, days(v, 3650));
  const f = caFiles(dir);
  try { fs.mkdirSync(dir, { recursive: true, mode: 0o700 }); } catch (e) { throw new Failure(`cannot create ${dir}: ${describe(e)}`); }
  if (!v.force && fs.existsSync(f.key)) throw new Failure(`${f.key} already exists; refusing to overwrite a CA key (every member certificate depends on it; --force replaces it)`);
  try { writeSecretFile(f.key, ca.serialize(), { exclusive: !v.force }); } catch (e) { throw new Failure(`cannot create ${f.key}: ${describe(e)}`); }
  try { writeFileAtomic(f.pub, certificate, 0o644); } catch (e) { throw new Failure(`cannot write ${f.pub}: ${describe(e)}`); }
  return `created CA "${ca.name}" (key id ${hex(ca.keyId)})\n  private key: ${f.key} (keep it secret, mode 0600)\n  CA certificate: ${f.pub} (give it to every member)\n`;
}

function memberKey(v: Values): Uint8Array {
  if (v.key !== undefined && v.pub !== undefined) throw new UsageError('sign: give --key or --pub, not both');
  if (v.pub !== undefined) {
    const t = v.pub.trim();
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(t)) throw new UsageError('sign: --pub must be the base64 Ed25519 public key');
    const b = Buffer.from(t, 'base64');
    if (b.length !== 32) throw new UsageError(`sign: --pub must decode to 32 bytes, got ${b.length}`);
    return new Uint8Array(b);
  }
  if (v.key === undefined) throw new UsageError('sign: --key NODE_KEY_FILE or --pub BASE64 is required');
  let text: string;
  try { text = fs.readFileSync(v.key, 'utf8'); } catch (e) { throw new Failure(`cannot read node key ${v.key}: ${describe(e)}`); }
  // Only the public half is needed; still parse the whole file so a corrupt one is caught.
  try { return Identity.parse(text, `node key ${v.key}`).publicKey; } catch (e) {
    if (e instanceof IdentityError) throw new Failure(e.message);
    throw e;
  }
}

function cmdSign(v: Values): string {
  const dir = need(v, 'dir', 'sign');
  const name = need(v, 'name', 'sign');
  const out = need(v, 'out', 'sign');
  const validDays = days(v, DEFAULT_MEMBER_DAYS);
  const pub = memberKey(v);
  const ca = loadCaKey(caFiles(dir).key);
  if (!v.force && fs.existsSync(out)) throw new Failure(`${out} already exists (use --force to replace it)`);
  const cert = signMember(ca, pub, name, validDays);
  try { writeFileAtomic(out, cert, 0o644); } catch (e) { throw new Failure(`cannot write ${out}: ${describe(e)}`); }
  const c = decodeCertificate(cert);
  return `signed ${out}: ${c.address} "${c.name}" serial ${formatSerial(c.serial)}, valid until ${ts(c.notAfter)}\n`;
}

function cmdRevoke(v: Values): string {
  const dir = need(v, 'dir', 'revoke');
  if (v.cert !== undefined && v.serial !== undefined) throw new UsageError('revoke: give --cert or --serial, not both');
  if (v.cert === undefined && v.serial === undefined) throw new UsageError('revoke: --cert CERT or --serial HEX is required');
  const f = caFiles(dir);
  const list = v.list ?? f.list;
  const ca = loadCaKey(f.key);
  let serial: bigint;
  let what: string;
  if (v.cert !== undefined) {
    // Only this CA's certificates can be revoked by it; expiry does not matter here.
    const c = decodeCertificate(readCertificateFile(v.cert));
    try { verifyCertificate(readCertificateFile(v.cert), ca.publicKey, c.notBefore); } catch (e) {
      if (e instanceof CertificateError) throw new Failure(`${v.cert}: ${e.message}`);
      throw e;
    }
    serial = c.serial;
    what = `${c.address} "${c.name}" serial ${formatSerial(serial)}`;
  } else {
    try { serial = parseSerial(v.serial!); } catch (e) { throw new UsageError(`revoke: ${(e as Error).message}`); }
    what = `serial ${formatSerial(serial)}`;
  }
  let serials = new Set<bigint>();
  let keys = new Set<string>();
  let issuedBefore = -1;
  if (fs.existsSync(list)) {
    let data: Buffer;
    try { data = fs.readFileSync(list); } catch (e) { throw new Failure(`cannot read ${list}: ${describe(e)}`); }
    try {
      const r = verifyRevocations(new Uint8Array(data), ca.publicKey);
      serials = new Set(r.serials); keys = new Set(r.keys); issuedBefore = r.issuedAt;
    } catch (e) {
      if (e instanceof CertificateError) throw new Failure(`existing revocation list ${list} does not verify with this CA: ${e.message}`);
      throw e;
    }
  }
  const already = serials.has(serial);
  serials.add(serial);
  // Strictly newer than the list it replaces, or watchers would reject it as stale.
  const issuedAt = Math.max(Date.now(), issuedBefore + 1);
  try { writeFileAtomic(list, signRevocations(ca, { serials, keys }, issuedAt), 0o644); } catch (e) { throw new Failure(`cannot write ${list}: ${describe(e)}`); }
  return `${already ? 'already revoked' : 'revoked'} ${what}; ${list} now lists ${serials.size} serial(s)${keys.size ? ` and ${keys.size} key(s)` : ''}, issued ${ts(issuedAt)}\n`;
}

function cmdShow(file: string, v: Values): string {
  let raw: Uint8Array;
  try { raw = new Uint8Array(fs.readFileSync(file)); } catch (e) { throw new Failure(`cannot read ${file}: ${describe(e)}`); }
  const caPub = v.ca !== undefined ? loadCaCertificate(v.ca).publicKey : undefined;
  const now = Date.now();
  const lines: string[] = [];
  const rl = fileBytes(raw, REVOCATION_MAGIC);
  if (Buffer.from(rl.subarray(0, 4)).toString('latin1') === REVOCATION_MAGIC) {
    const r = decodeRevocations(rl);
    lines.push(`revocation list`, `ca key id: ${hex(r.caKeyId)}`, `issued: ${ts(r.issuedAt)}`,
      `revoked serials: ${r.serials.size}`, ...[...r.serials].map((s) => `  ${formatSerial(s)}`),
      `revoked keys: ${r.keys.size}`, ...[...r.keys].map((k) => `  ${k} ${addressOf(Buffer.from(k, 'hex'))}`));
    if (caPub) { verifyRevocations(rl, caPub); lines.push('signature: valid (this CA)'); }
    return lines.join('\n') + '\n';
  }
  const cb = fileBytes(raw, CERT_MAGIC);
  const c = decodeCertificate(cb);
  let status: string;
  if (c.kind === KIND_CA) {
    readCaCertificate(cb);
    status = 'self-signed CA certificate, signature valid';
  } else if (caPub) {
    try {
      verifyCertificate(cb, caPub, now);
      status = 'valid (signed by this CA)';
    } catch (e) {
      if (!(e instanceof CertificateError)) throw e;
      status = `INVALID: ${e.message}`;
    }
  } else {
    status = now >= c.notAfter ? 'expired (signature not checked; give --ca CA_PUB)' : now < c.notBefore ? 'not yet valid (signature not checked)' : 'within its validity (signature not checked; give --ca CA_PUB)';
  }
  lines.push(
    `${kindName(c.kind)} certificate`,
    `address: ${c.address}${c.address.equals(addressOf(c.publicKey)) ? '' : ' (DOES NOT MATCH THE KEY)'}`,
    `name: ${c.name}`,
    `public key: ${Buffer.from(c.publicKey).toString('base64')}`,
    `serial: ${formatSerial(c.serial)}`,
    `not before: ${ts(c.notBefore)}`,
    `not after: ${ts(c.notAfter)}`,
    `ca key id: ${hex(c.caKeyId)}`,
    `status: ${status}`,
  );
  return lines.join('\n') + '\n';
}

function main(argv: string[]): number {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) { process.stderr.write(`brunet-ca: ${(e as Error).message}\n${USAGE}\n`); return EXIT_BAD_INPUT; }
  const v = parsed.values as Values;
  const [cmd, ...rest] = parsed.positionals;
  if (v.help) { process.stdout.write(`${USAGE}\n`); return EXIT_OK; }
  try {
    if (cmd === undefined) throw new UsageError('missing command');
    const allowed = ALLOWED[cmd];
    if (!allowed) throw new UsageError(`unknown command ${JSON.stringify(cmd)}`);
    for (const k of Object.keys(v)) {
      if (k === 'help' || (k === 'force' && !v.force)) continue;
      if (!allowed.includes(k as keyof typeof OPTIONS)) throw new UsageError(`${cmd}: unexpected option --${k}`);
    }
    let out: string;
    if (cmd === 'show') {
      if (rest.length !== 1) throw new UsageError('show: give exactly one FILE');
      try { out = cmdShow(rest[0]!, v); } catch (e) {
        if (e instanceof CertificateError || (e as Error).name === 'WireError') throw new Failure(`${rest[0]}: ${(e as Error).message}`);
        throw e;
      }
    } else {
      if (rest.length) throw new UsageError(`${cmd}: unexpected argument ${JSON.stringify(rest[0])}`);
      out = cmd === 'init' ? cmdInit(v) : cmd === 'sign' ? cmdSign(v) : cmdRevoke(v);
    }
    process.stdout.write(out);
    return EXIT_OK;
  } catch (e) {
    if (e instanceof UsageError) { process.stderr.write(`brunet-ca: ${e.message}\n${USAGE}\n`); return EXIT_BAD_INPUT; }
    if (e instanceof Failure || e instanceof CertificateError || (e as Error).name === 'WireError') {
      process.stderr.write(`brunet-ca: ${(e as Error).message}\n`);
      return EXIT_FAILED;
    }
    process.stderr.write(`brunet-ca: ${describe(e)}\n`);
    return EXIT_FAILED;
  }
}

process.exitCode = main(process.argv.slice(2));
