// Group membership by CA: the certificate and revocation-list formats, membershipVerifier
// on secure edges over the memory transport, live revocation (RevocationWatcher +
// enforceRevocations), and the brunet-ca tool end to end.
import t, { type Test } from 'tap';
import fc from 'fast-check';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CertificateAuthority, createCa, signMember, signRevocations } from '../src/edge/ca/authority.js';
import { KIND_CA, KIND_MEMBER, MAX_NAME_BYTES, caKeyId, decodeCertificate, formatSerial, parseSerial } from '../src/edge/ca/certificate.js';
import { NO_REVOCATIONS, decodeRevocations, type Revoked } from '../src/edge/ca/crl.js';
import { CertificateError, type CertificateFailure } from '../src/edge/ca/errors.js';
import {
  checkMembership, checkOwnCertificate, loadCaCertificate, membershipVerifier, readCaCertificate, verifyCertificate, verifyRevocations,
} from '../src/edge/ca/verify.js';
import { groupKey } from '../src/edge/handshake.js';
import { Identity, loadOrCreateIdentity } from '../src/edge/identity.js';
import { RevocationWatcher, enforceRevocations } from '../src/edge/revocation.js';
import type { SecureEdge } from '../src/edge/secure-edge.js';
import { SecureEdgeListener, type SecureListenerOptions } from '../src/edge/secure-listener.js';
import { MemoryNetwork } from '../src/transport/memory.js';
import { realClock } from '../src/util/clock.js';
import { createLogger } from '../src/util/log.js';
import { cryptoRandom } from '../src/util/random.js';
import { writeFileAtomic } from '../src/util/secret-file.js';
import { WireError } from '../src/wire/value.js';

const KEY = groupKey('ca test group');
const NS = 'ca-test';
const DAY = 86_400_000;
const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist/tools/brunet-ca.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function tempDir(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'brunet-ca-test-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function rejects(t: Test, fn: () => unknown, reason: CertificateFailure, msg: RegExp, what: string): void {
  try {
    fn();
    t.fail(`${what}: accepted`);
  } catch (e) {
    t.ok(e instanceof CertificateError, `${what}: CertificateError`);
    t.equal((e as CertificateError).reason, reason, `${what}: reason ${reason}`);
    t.match((e as Error).message, msg, `${what}: message`);
  }
}

/** Re-signs `body` (a certificate without its signature) with the CA. */
function resign(ca: CertificateAuthority, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 64);
  out.set(body);
  out.set(ca.sign(body), body.length);
  return out;
}

t.test('certificate round trip', async (t) => {
  const { ca, certificate: caCert } = createCa('Group One');
  const member = Identity.generate();
  const now = Date.now();
  const cert = signMember(ca, member.publicKey, 'alice ☃', 30, { now });
  t.equal(cert.length, 155 + Buffer.byteLength('alice ☃'), 'documented size');
  t.equal(Buffer.from(cert.subarray(0, 4)).toString(), 'BRNC');
  const v = verifyCertificate(cert, ca.publicKey, now);
  t.ok(v.address.equals(member.address), 'address');
  t.same(Buffer.from(v.publicKey), Buffer.from(member.publicKey), 'key');
  t.equal(v.name, 'alice ☃');
  t.equal(v.notAfter, now + 30 * DAY);
  t.ok(v.notBefore < now && v.notBefore >= now - 5 * 60_000, 'notBefore slightly backdated');
  t.equal(v.kind, KIND_MEMBER);
  t.equal(typeof v.serial, 'bigint');
  const d = decodeCertificate(cert);
  t.same(Buffer.from(d.caKeyId), Buffer.from(caKeyId(ca.publicKey)));
  t.same(Buffer.from(d.caKeyId), Buffer.from(ca.keyId));
  t.equal(d.serial, v.serial);
  t.not(signMember(ca, member.publicKey, 'alice', 30, { now }).toString(), cert.toString());
  t.not(decodeCertificate(signMember(ca, member.publicKey, 'a', 1)).serial, v.serial, 'random serials');
  // Base64 text of the same bytes is accepted too.
  t.equal(verifyCertificate(new Uint8Array(Buffer.from(Buffer.from(cert).toString('base64') + '\n')), ca.publicKey, now).serial, v.serial);
  // The CA certificate.
  const info = readCaCertificate(caCert);
  t.same(Buffer.from(info.publicKey), Buffer.from(ca.publicKey));
  t.equal(info.name, 'Group One');
  t.equal(decodeCertificate(caCert).kind, KIND_CA);
  t.equal(verifyCertificate(caCert, ca.publicKey, now, { kind: KIND_CA }).name, 'Group One');
  // Own-certificate check.
  t.equal(checkOwnCertificate(cert, ca.publicKey, member.publicKey, now).serial, v.serial);
  rejects(t, () => checkOwnCertificate(cert, ca.publicKey, Identity.generate().publicKey, now), 'key-mismatch', /this node's key/, 'own cert for another key');
  // CA key file round trip.
  const ca2 = CertificateAuthority.parse(ca.serialize());
  t.same(Buffer.from(ca2.publicKey), Buffer.from(ca.publicKey));
  t.equal(ca2.name, 'Group One');
  t.equal(verifyCertificate(signMember(ca2, member.publicKey, 'x', 1), ca.publicKey, Date.now()).name, 'x');
  t.equal(parseSerial(formatSerial(v.serial)), v.serial);
  t.equal(formatSerial(0x12abn), '00000000000012ab');
});

t.test('every certificate rejection reason', async (t) => {
  const { ca, certificate: caCert } = createCa('G');
  const other = createCa('Other').ca;
  const m = Identity.generate();
  const now = Date.now();
  const cert = signMember(ca, m.publicKey, 'bob', 10, { now });
  const n = 3; // 'bob'
  const sigAt = 91 + n;

  const badSig = cert.slice(); badSig[badSig.length - 1]! ^= 1;
  rejects(t, () => verifyCertificate(badSig, ca.publicKey, now), 'bad-signature', /signature invalid/, 'flipped signature bit');
  const badName = cert.slice(); badName[67]! ^= 0x20; // 'b' -> 'B'
  rejects(t, () => verifyCertificate(badName, ca.publicKey, now), 'bad-signature', /signature invalid/, 'edited name');
  const longer = cert.slice(); new DataView(longer.buffer).setBigUint64(75 + n, BigInt(now + 9999 * DAY));
  rejects(t, () => verifyCertificate(longer, ca.publicKey, now), 'bad-signature', /signature invalid/, 'extended notAfter');
  // Same key id claimed but another key's signature.
  const forged = cert.slice(); forged.set(other.sign(cert.subarray(0, sigAt)), sigAt);
  rejects(t, () => verifyCertificate(forged, ca.publicKey, now), 'bad-signature', /signature invalid/, 'signed by another key');

  rejects(t, () => verifyCertificate(signMember(other, m.publicKey, 'bob', 10), ca.publicKey, now), 'wrong-ca', /another CA/, 'other CA');
  rejects(t, () => verifyCertificate(cert, ca.publicKey, now + 10 * DAY), 'expired', /expired at/, 'expired (at notAfter)');
  rejects(t, () => verifyCertificate(cert, ca.publicKey, now + 11 * DAY), 'expired', /expired/, 'expired');
  const future = signMember(ca, m.publicKey, 'bob', 10, { now, notBefore: now + DAY });
  rejects(t, () => verifyCertificate(future, ca.publicKey, now), 'not-yet-valid', /not valid before/, 'not yet valid');
  t.equal(verifyCertificate(future, ca.publicKey, now + DAY).name, 'bob', 'valid from notBefore');

  // The CA signed a certificate whose address is not the key's.
  const wrongAddr = cert.slice(0, sigAt); wrongAddr.set(Identity.generate().address.bytes, 46);
  rejects(t, () => verifyCertificate(resign(ca, wrongAddr), ca.publicKey, now), 'address-mismatch', /does not match its key/, 'address mismatch');
  rejects(t, () => verifyCertificate(caCert, ca.publicKey, now), 'wrong-kind', /expected a member certificate, got a CA/, 'CA cert as member');
  rejects(t, () => readCaCertificate(cert), 'wrong-kind', /not a CA certificate/, 'member cert as CA');

  // Malformed.
  rejects(t, () => verifyCertificate(cert.subarray(0, cert.length - 1), ca.publicKey, now), 'malformed', /truncated/, 'truncated');
  rejects(t, () => verifyCertificate(cert.subarray(0, 10), ca.publicKey, now), 'malformed', /truncated/, 'very truncated');
  rejects(t, () => verifyCertificate(new Uint8Array([...cert, 0]), ca.publicKey, now), 'malformed', /trailing/, 'trailing byte');
  rejects(t, () => verifyCertificate(new Uint8Array(0), ca.publicKey, now), 'malformed', /bad magic/, 'empty');
  rejects(t, () => verifyCertificate(new Uint8Array(Buffer.from('hello world, not a cert')), ca.publicKey, now), 'malformed', /bad magic/, 'text');
  const v2 = cert.slice(); v2[4] = 2;
  rejects(t, () => verifyCertificate(v2, ca.publicKey, now), 'unsupported-version', /version 2/, 'version 2');
  const kind9 = cert.slice(); kind9[5] = 9;
  rejects(t, () => verifyCertificate(kind9, ca.publicKey, now), 'malformed', /kind 9/, 'unknown kind');
  const longName = new Uint8Array(cert.length + 62); longName.set(cert.subarray(0, 66)); longName[66] = 65;
  rejects(t, () => verifyCertificate(longName, ca.publicKey, now), 'malformed', /exceeds 64/, 'name > 64 bytes');
  const badUtf8 = cert.slice(0, sigAt); badUtf8[67] = 0xff;
  rejects(t, () => verifyCertificate(resign(ca, badUtf8), ca.publicKey, now), 'malformed', /UTF-8/, 'invalid UTF-8 name');
  const ctl = cert.slice(0, sigAt); ctl[67] = 0x1b;
  rejects(t, () => verifyCertificate(resign(ca, ctl), ca.publicKey, now), 'malformed', /control/, 'control character in name');
  const inverted = cert.slice(0, sigAt); new DataView(inverted.buffer).setBigUint64(75 + n, BigInt(now - DAY));
  rejects(t, () => verifyCertificate(resign(ca, inverted), ca.publicKey, now), 'malformed', /notAfter is not after/, 'notAfter before notBefore');

  // Signing side.
  t.equal(verifyCertificate(signMember(ca, m.publicKey, 'x'.repeat(MAX_NAME_BYTES), 1), ca.publicKey, Date.now()).name.length, 64, '64-byte name ok');
  rejects(t, () => signMember(ca, m.publicKey, 'x'.repeat(65), 1), 'malformed', /at most 64/, 'sign 65-byte name');
  rejects(t, () => signMember(ca, m.publicKey, 'é'.repeat(33), 1), 'malformed', /66 bytes/, 'name counted in UTF-8 bytes');
  rejects(t, () => signMember(ca, m.publicKey, 'a\nb', 1), 'malformed', /control/, 'sign name with newline');
  rejects(t, () => signMember(ca, m.publicKey.subarray(0, 31), 'a', 1), 'malformed', /32 bytes/, 'short key');
  rejects(t, () => signMember(ca, m.publicKey, 'a', 0), 'malformed', /positive/, 'zero days');
});

t.test('decoders throw only WireError or CertificateError', async (t) => {
  const { ca, certificate: caCert } = createCa('G');
  const cert = signMember(ca, Identity.generate().publicKey, 'fuzz', 5);
  const list = signRevocations(ca, { serials: [1n, 2n, 99n], keys: [Identity.generate().publicKey] }, Date.now());
  const ok = (e: unknown) => e instanceof WireError || e instanceof CertificateError;
  const mutate = (base: Uint8Array) => fc.tuple(fc.nat(base.length + 8), fc.integer({ min: 0, max: 255 }), fc.nat(base.length + 8))
    .map(([i, v, cut]) => { const b = new Uint8Array([...base, 0, 0, 0, 0]).slice(0, cut); if (i < b.length) b[i] = v; return b; });
  const check = (b: Uint8Array) => {
    for (const f of [() => decodeCertificate(b), () => decodeRevocations(b), () => readCaCertificate(b)]) {
      try { f(); } catch (e) { if (!ok(e)) return false; }
    }
    for (const f of [() => verifyCertificate(b, ca.publicKey, Date.now()), () => verifyRevocations(b, ca.publicKey)]) {
      try { f(); } catch (e) { if (!(e instanceof CertificateError)) return false; }
    }
    return true;
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), check), { numRuns: 500 });
  fc.assert(fc.property(fc.oneof(mutate(cert), mutate(caCert), mutate(list)), check), { numRuns: 1500 });
  t.pass('fuzzed');
});

t.test('revocation lists: signing, verification, tampering', async (t) => {
  const { ca } = createCa('G');
  const other = createCa('Other').ca;
  const k1 = Identity.generate().publicKey;
  const issued = Date.now();
  const list = signRevocations(ca, { serials: [5n, 1n, 5n, (1n << 64n) - 1n], keys: [k1, Buffer.from(k1).toString('hex')] }, issued);
  t.equal(Buffer.from(list.subarray(0, 4)).toString(), 'BRNR');
  t.equal(list.length, 93 + 8 * 3 + 32, 'documented size (duplicates removed)');
  const r = verifyRevocations(list, ca.publicKey);
  t.equal(r.issuedAt, issued);
  t.same([...r.serials], [1n, 5n, (1n << 64n) - 1n], 'serials sorted and unique');
  t.same([...r.keys], [Buffer.from(k1).toString('hex')]);
  const empty = verifyRevocations(signRevocations(ca, {}, issued), ca.publicKey);
  t.equal(empty.serials.size + empty.keys.size, 0, 'empty list');

  rejects(t, () => verifyRevocations(list, other.publicKey), 'wrong-ca', /another CA/, 'verified with another CA');
  rejects(t, () => verifyRevocations(signRevocations(other, { serials: [1n] }, issued), ca.publicKey), 'wrong-ca', /another CA/, 'signed by another CA');
  // Every single-byte edit is caught.
  let caught = 0;
  for (let i = 0; i < list.length; i++) {
    const b = list.slice(); b[i]! ^= 0x01;
    try { verifyRevocations(b, ca.publicKey); } catch (e) { if (e instanceof CertificateError) caught++; }
  }
  t.equal(caught, list.length, 'every flipped bit rejected');
  const dropped = list.slice(); new DataView(dropped.buffer).setUint32(21, 2); // claim one serial fewer
  rejects(t, () => verifyRevocations(dropped, ca.publicKey), 'malformed', /./, 'edited count');
  rejects(t, () => verifyRevocations(list.subarray(0, 50), ca.publicKey), 'malformed', /truncated/, 'truncated list');
  const unsorted = list.slice(0, list.length - 64); new DataView(unsorted.buffer).setBigUint64(25, 7n);
  rejects(t, () => verifyRevocations(resign(ca, unsorted), ca.publicKey), 'malformed', /ascending/, 'unsorted serials');
  rejects(t, () => verifyRevocations(signMember(ca, k1, 'x', 1), ca.publicKey), 'malformed', /bad magic/, 'a certificate is not a list');
  rejects(t, () => signRevocations(ca, { serials: [1n << 64n] }, issued), 'malformed', /out of range/, 'serial > u64');
});

t.test('membershipVerifier decisions', async (t) => {
  const { ca } = createCa('G');
  const other = createCa('O').ca;
  const m = Identity.generate();
  const cert = signMember(ca, m.publicKey, 'carol', 10);
  let revoked: Revoked = NO_REVOCATIONS;
  const o = { caPublicKey: ca.publicKey, clock: realClock, revocations: () => revoked };
  const info = (id: Identity, certificate?: Uint8Array) => ({ address: id.address, publicKey: id.publicKey, ...(certificate ? { certificate } : {}) });
  t.equal(checkMembership(info(m, cert), o), null, 'member admitted');
  t.equal(membershipVerifier(o)(info(m, cert)), null);
  t.equal(checkMembership(info(m), o), 'no certificate');
  t.equal(checkMembership(info(m, new Uint8Array(0)), o), 'no certificate');
  t.equal(checkMembership(info(Identity.generate(), cert), o), 'certificate is for another key', 'stolen certificate');
  t.equal(checkMembership(info(m, signMember(other, m.publicKey, 'carol', 10)), o), 'certificate from another CA');
  t.equal(checkMembership(info(m, signMember(ca, m.publicKey, 'carol', 1, { now: Date.now() - 3 * DAY })), o), 'certificate expired');
  t.equal(checkMembership(info(m, signMember(ca, m.publicKey, 'carol', 2, { notBefore: Date.now() + DAY })), o), 'certificate not yet valid');
  t.equal(checkMembership(info(m, cert.subarray(1)), o), 'malformed certificate');
  const bad = cert.slice(); bad[bad.length - 2]! ^= 4;
  t.equal(checkMembership(info(m, bad), o), 'certificate signature invalid');
  const serial = decodeCertificate(cert).serial;
  revoked = verifyRevocations(signRevocations(ca, { serials: [serial] }, 1), ca.publicKey);
  t.match(checkMembership(info(m, cert), o), /^revoked \(carol, serial [0-9a-f]{16}\)$/);
  revoked = verifyRevocations(signRevocations(ca, { keys: [m.publicKey] }, 2), ca.publicKey);
  t.match(checkMembership(info(m, signMember(ca, m.publicKey, 'carol again', 10)), o), /^revoked/, 'key revocation covers new certificates');
  t.equal(checkMembership(info(m, cert), { caPublicKey: ca.publicKey, clock: realClock }), null, 'no revocations given');
});

// ---------------------------------------------------------------------------------------
// Over the memory transport

interface Member { l: SecureEdgeListener; id: Identity; cert?: Uint8Array; serial?: bigint; inbound: SecureEdge[] }

function member(t: Test, net: MemoryNetwork, o: { ca?: CertificateAuthority; verifyWith?: Uint8Array; revocations?: () => Revoked; certificate?: Uint8Array | null; name?: string; days?: number; signNow?: number } = {}): Member {
  const id = Identity.generate();
  const cert = o.certificate === null ? undefined : o.certificate ?? (o.ca ? signMember(o.ca, id.publicKey, o.name ?? 'm', o.days ?? 10, { now: o.signNow }) : undefined);
  const opts: SecureListenerOptions = {
    identity: id, groupKey: KEY, namespace: NS, clock: realClock, random: cryptoRandom,
    ...(cert ? { certificate: cert } : {}),
    ...(o.verifyWith ? { verifyPeer: membershipVerifier({ caPublicKey: o.verifyWith, clock: realClock, revocations: o.revocations }) } : {}),
  };
  const l = new SecureEdgeListener(net.listener(), opts);
  const m: Member = { l, id, cert, serial: cert ? decodeCertificate(cert).serial : undefined, inbound: [] };
  l.onEdge = (e) => { m.inbound.push(e as SecureEdge); };
  t.teardown(() => l.stop());
  return m;
}

const ta = (m: Member) => m.l.localTAs()[0]!;

t.test('members link; non-members, other-CA and expired members are refused both ways', async (t) => {
  const net = new MemoryNetwork();
  const { ca } = createCa('G');
  const other = createCa('Other').ca;
  const pub = ca.publicKey;
  const a = member(t, net, { ca, verifyWith: pub, name: 'a' });
  const b = member(t, net, { ca, verifyWith: pub, name: 'b' });
  const none = member(t, net, { verifyWith: pub }); // no certificate, but checks ours
  const open = member(t, net, {}); // no certificate and no checks at all
  const foreign = member(t, net, { ca: other, verifyWith: other.publicKey, name: 'f' });
  const foreignLax = member(t, net, { ca: other, name: 'f2' }); // other CA, does not check
  const expired = member(t, net, { ca, verifyWith: pub, name: 'old', days: 1, signNow: Date.now() - 2 * DAY });
  for (const m of [a, b, none, open, foreign, foreignLax, expired]) await m.l.start();

  const e = await a.l.createEdge(ta(b));
  t.ok(e.established, 'members link');
  await waitFor('inbound edge', () => b.inbound.length === 1);
  t.ok(e.peer.address.equals(b.id.address));
  t.same(Buffer.from(e.peer.certificate!), Buffer.from(b.cert!), 'peer certificate available on the edge');
  t.equal(decodeCertificate(b.inbound[0]!.peer.certificate!).name, 'a');
  t.same(a.l.establishedEdges().map((x) => x.id), [e.id], 'outbound edge listed');
  t.same(b.l.establishedEdges().map((x) => x.id), [b.inbound[0]!.id], 'inbound edge listed');
  const e2 = await b.l.createEdge(ta(a));
  t.ok(e2.established, 'and the other way');

  await t.rejects(a.l.createEdge(ta(none)), { kind: 'refused', message: /peer refused: no certificate/ }, 'member -> no certificate');
  await t.rejects(none.l.createEdge(ta(a)), { kind: 'refused-by-peer', message: /refused by peer: no certificate/ }, 'no certificate -> member');
  await t.rejects(a.l.createEdge(ta(open)), { kind: 'refused', message: /no certificate/ }, 'member -> open node');
  await t.rejects(open.l.createEdge(ta(a)), { kind: 'refused-by-peer', message: /no certificate/ }, 'open node -> member');
  await t.rejects(a.l.createEdge(ta(foreign)), { kind: 'refused', message: /certificate from another CA/ }, 'member -> other CA');
  await t.rejects(foreign.l.createEdge(ta(a)), { message: /certificate from another CA/ }, 'other CA -> member');
  await t.rejects(a.l.createEdge(ta(foreignLax)), { kind: 'refused', message: /certificate from another CA/ }, 'member -> lax other-CA node');
  await t.rejects(foreignLax.l.createEdge(ta(a)), { kind: 'refused-by-peer', message: /refused by peer: certificate from another CA/ }, 'lax other-CA node -> member');
  await t.rejects(a.l.createEdge(ta(expired)), { kind: 'refused', message: /certificate expired/ }, 'member -> expired');
  await t.rejects(expired.l.createEdge(ta(b)), { kind: 'refused-by-peer', message: /refused by peer: certificate expired/ }, 'expired -> member');
  t.equal(a.l.edgeCount, 2, 'only the member links exist');
  t.equal(none.l.edgeCount + open.l.edgeCount + foreign.l.edgeCount + foreignLax.l.edgeCount + expired.l.edgeCount, 0);
  t.ok(a.l.stats.handshakesFailed.refused! >= 4);
});

t.test('a member revoked while linked is cut off within seconds of the list being written', async (t) => {
  const dir = tempDir(t);
  const listFile = join(dir, 'revoked.list');
  const net = new MemoryNetwork();
  const { ca } = createCa('G');
  const lines: string[] = [];
  const log = createLogger('info', '', (l) => lines.push(l));
  // Every member watches the same file (in a deployment: each node its own copy).
  const watchers: RevocationWatcher[] = [];
  const mk = (name: string) => {
    let m!: Member;
    const w = new RevocationWatcher({ file: listFile, caPublicKey: ca.publicKey, clock: realClock, log,
      onChange: (list) => enforceRevocations([m.l], list, { log }) });
    m = member(t, net, { ca, verifyWith: ca.publicKey, revocations: w.revoked, name });
    watchers.push(w);
    t.teardown(() => w.stop());
    return { m, w };
  };
  const { m: a, w: wa } = mk('a');
  const { m: b } = mk('b');
  const { m: c } = mk('c');
  for (const w of watchers) t.equal(w.start().serials.size, 0, 'no list yet: nobody revoked');
  t.match(lines.join('\n'), /does not exist yet/);
  for (const m of [a, b, c]) await m.l.start();

  const ab = await a.l.createEdge(ta(b));
  const ac = await a.l.createEdge(ta(c));
  const cb = await c.l.createEdge(ta(b));
  await waitFor('inbound edges', () => b.inbound.length === 2 && c.inbound.length === 1);
  const closedWhy: string[] = [];
  ab.onClose = (_e, why) => closedWhy.push(why);

  const t0 = Date.now();
  writeFileAtomic(listFile, signRevocations(ca, { serials: [b.serial!] }, Date.now()));
  await waitFor('edges to the revoked member closed', () => ab.closed && cb.closed && b.inbound.every((e) => e.closed), 4000);
  const took = Date.now() - t0;
  t.ok(took < 3000, `revoked member disconnected after ${took} ms`);
  t.match(closedWhy[0], /member revoked \(b, serial/);
  t.notOk(ac.closed, 'the other member link stays up');
  t.notOk(c.inbound[0]!.closed);
  t.equal(wa.current.serials.size, 1);
  t.match(lines.join('\n'), /loaded: 1 serials/);
  await t.rejects(b.l.createEdge(ta(a)), { kind: 'refused-by-peer', message: /refused by peer: revoked \(b, serial/ }, 'revoked member cannot reconnect');
  await t.rejects(a.l.createEdge(ta(b)), { kind: 'refused', message: /revoked/ }, 'nor be reached');
  t.ok((await c.l.createEdge(ta(a))).established, 'members still link');
});

t.test('RevocationWatcher keeps the previous list when a file is bad, and polls without fs.watch', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'revoked.list');
  const { ca } = createCa('G');
  const other = createCa('O').ca;
  const lines: string[] = [];
  const changes: bigint[][] = [];
  const w = new RevocationWatcher({ file, caPublicKey: ca.publicKey, clock: realClock, watch: false, pollMs: 100,
    log: createLogger('info', '', (l) => lines.push(l)), onChange: (l) => changes.push([...l.serials]) });
  const t1 = Date.now();
  writeFileAtomic(file, signRevocations(ca, { serials: [1n] }, t1));
  t.same([...w.start().serials], [1n], 'initial list loaded');
  t.teardown(() => w.stop());

  const expectRejected = async (what: string, n: number, re: RegExp) => {
    await waitFor(what, () => w.rejected === n, 2000);
    t.match(lines.at(-1), re, `${what}: logged`);
    t.same([...w.current.serials], [1n], `${what}: previous list kept`);
  };
  writeFileSync(file, 'garbage');
  await expectRejected('garbage', 1, /rejected, keeping the previous one.*bad magic/);
  writeFileAtomic(file, signRevocations(other, { serials: [] }, t1 + 10));
  await expectRejected('other CA', 2, /another CA/);
  const tampered = signRevocations(ca, { serials: [] }, t1 + 10); tampered[tampered.length - 1]! ^= 1;
  writeFileAtomic(file, tampered);
  await expectRejected('tampered', 3, /signature invalid/);
  writeFileAtomic(file, signRevocations(ca, { serials: [] }, t1 - 1000));
  await expectRejected('older list (rollback)', 4, /before the list in force/);
  const half = signRevocations(ca, { serials: [1n, 2n] }, t1 + 20);
  writeFileSync(file, half.subarray(0, 40));
  await expectRejected('half-written', 5, /truncated/);
  t.same(changes, [], 'no change reported for rejected files');
  writeFileSync(file, half);
  await waitFor('good list', () => w.current.serials.size === 2, 2000);
  t.same(changes, [[1n, 2n]], 'onChange with the new list');
  // Base64 form of a list is accepted too; the same list rewritten is not a change.
  writeFileAtomic(file, Buffer.from(half).toString('base64') + '\n');
  await sleep(300);
  t.equal(changes.length, 1);
  t.equal(w.rejected, 5);
  rmSync(file);
  await sleep(300);
  t.equal(w.current.serials.size, 2, 'file removed: list kept');
  t.match(lines.at(-1), /disappeared/);

  // A bad file at start is an error, not an empty list.
  const w2 = new RevocationWatcher({ file: join(dir, 'bad.list'), caPublicKey: ca.publicKey, clock: realClock });
  writeFileSync(join(dir, 'bad.list'), 'nope');
  t.throws(() => w2.start(), { name: 'CertificateError', message: /revocation list .*bad\.list: not a brunet-ts revocation list/ });
});

t.test('enforceRevocations also closes links whose certificate has expired, and revokes by key', async (t) => {
  const net = new MemoryNetwork();
  const { ca } = createCa('G');
  const a = member(t, net, { ca, verifyWith: ca.publicKey, name: 'a' });
  const b = member(t, net, { ca, verifyWith: ca.publicKey, name: 'b', days: 2 });
  const c = member(t, net, { ca, verifyWith: ca.publicKey, name: 'c', days: 30 });
  for (const m of [a, b, c]) await m.l.start();
  const ab = await a.l.createEdge(ta(b));
  const ac = await a.l.createEdge(ta(c));
  t.same(enforceRevocations([a.l], NO_REVOCATIONS, { now: Date.now() }), [], 'nothing to do');
  const closed = enforceRevocations([a.l], NO_REVOCATIONS, { now: Date.now() + 3 * DAY });
  t.same(closed.map((e) => e.id), [ab.id], 'expired peer closed');
  t.ok(ab.closed);
  t.notOk(ac.closed);
  t.same(a.l.establishedEdges().map((e) => e.id), [ac.id], 'a closed edge leaves the listener\'s list');
  const byKey = verifyRevocations(signRevocations(ca, { keys: [c.id.publicKey] }, Date.now()), ca.publicKey);
  t.same(enforceRevocations([a.l], byKey).map((e) => e.id), [ac.id], 'revoked by key');
  await waitFor('far side closed too', () => c.inbound.every((e) => e.closed) && b.inbound.every((e) => e.closed));
});

// ---------------------------------------------------------------------------------------
// The brunet-ca tool

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      res({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr });
    });
  });
}

t.test('brunet-ca init / sign / show / revoke end to end', async (t) => {
  const dir = tempDir(t);
  const caDir = join(dir, 'ca');
  const init = await cli(['init', '--dir', caDir, '--name', 'Test Group']);
  t.equal(init.code, 0, init.stderr);
  t.match(init.stdout, /created CA "Test Group" \(key id [0-9a-f]{16}\)/);
  t.equal(statSync(join(caDir, 'ca.key')).mode & 0o777, 0o600, 'ca.key is 0600');
  const caInfo = loadCaCertificate(join(caDir, 'ca.pub'));
  t.equal(caInfo.name, 'Test Group');
  const again = await cli(['init', '--dir', caDir]);
  t.equal(again.code, 1, 'init refuses to overwrite');
  t.match(again.stderr, /^brunet-ca: .*ca\.key already exists/);
  t.equal(again.stderr.trim().split('\n').length, 1, 'one line');

  const nodeKey = join(dir, 'node.config.key');
  const node = loadOrCreateIdentity(nodeKey);
  const certFile = join(dir, 'node.cert');
  const sign = await cli(['sign', '--dir', caDir, '--key', nodeKey, '--name', 'alice', '--days', '30', '--out', certFile]);
  t.equal(sign.code, 0, sign.stderr);
  t.match(sign.stdout, new RegExp(`signed .*node\\.cert: ${node.address.key} "alice" serial [0-9a-f]{16}`));
  const cert = new Uint8Array(readFileSync(certFile));
  const v = verifyCertificate(cert, caInfo.publicKey, Date.now());
  t.ok(v.address.equals(node.address), 'certificate for the node key');
  t.equal(v.name, 'alice');
  t.ok(Math.abs(v.notAfter - (Date.now() + 30 * DAY)) < 60_000, '30 days');
  const overwrite = await cli(['sign', '--dir', caDir, '--key', nodeKey, '--name', 'alice', '--out', certFile]);
  t.equal(overwrite.code, 1, 'sign does not overwrite without --force');

  const bob = Identity.generate();
  const bobCert = join(dir, 'bob.cert');
  const signPub = await cli(['sign', '--dir', caDir, '--pub', Buffer.from(bob.publicKey).toString('base64'), '--name', 'bob', '--out', bobCert]);
  t.equal(signPub.code, 0, signPub.stderr);
  const bobV = verifyCertificate(new Uint8Array(readFileSync(bobCert)), caInfo.publicKey, Date.now());
  t.ok(bobV.address.equals(bob.address));
  t.ok(Math.abs(bobV.notAfter - (Date.now() + 365 * DAY)) < 60_000, 'default 365 days');

  const show = await cli(['show', certFile]);
  t.equal(show.code, 0, show.stderr);
  t.match(show.stdout, new RegExp(`address: ${node.address.key}`));
  t.match(show.stdout, /name: alice/);
  t.match(show.stdout, new RegExp(`serial: ${formatSerial(v.serial)}`));
  t.match(show.stdout, new RegExp(`not after: ${new Date(v.notAfter).toISOString().replace(/[.]/g, '\\.')}`));
  const showCa = await cli(['show', certFile, '--ca', join(caDir, 'ca.pub')]);
  t.match(showCa.stdout, /status: valid \(signed by this CA\)/);
  const otherCa = join(dir, 'other');
  t.equal((await cli(['init', '--dir', otherCa])).code, 0);
  const showOther = await cli(['show', certFile, '--ca', join(otherCa, 'ca.pub')]);
  t.match(showOther.stdout, /status: INVALID: certificate issued by another CA/);

  const rev = await cli(['revoke', '--dir', caDir, '--cert', certFile]);
  t.equal(rev.code, 0, rev.stderr);
  t.match(rev.stdout, /revoked .*"alice" serial/);
  const listFile = join(caDir, 'revoked.list');
  let list = verifyRevocations(new Uint8Array(readFileSync(listFile)), caInfo.publicKey);
  t.same([...list.serials], [v.serial], 'serial in the signed list');
  const firstIssued = list.issuedAt;
  const rev2 = await cli(['revoke', '--dir', caDir, '--cert', bobCert]);
  t.equal(rev2.code, 0, rev2.stderr);
  list = verifyRevocations(new Uint8Array(readFileSync(listFile)), caInfo.publicKey);
  t.same(new Set(list.serials), new Set([v.serial, bobV.serial]), 'both serials, re-signed');
  t.ok(list.issuedAt > firstIssued, 'strictly newer issue time');
  const showList = await cli(['show', listFile, '--ca', join(caDir, 'ca.pub')]);
  t.match(showList.stdout, /revocation list/);
  t.match(showList.stdout, new RegExp(formatSerial(bobV.serial)));
  t.match(showList.stdout, /signature: valid/);
  const bySerial = await cli(['revoke', '--dir', caDir, '--serial', '12ab', '--list', join(dir, 'custom.list')]);
  t.equal(bySerial.code, 0, bySerial.stderr);
  t.same([...verifyRevocations(new Uint8Array(readFileSync(join(dir, 'custom.list'))), caInfo.publicKey).serials], [0x12abn]);
  const foreignCert = join(dir, 'foreign.cert');
  t.equal((await cli(['sign', '--dir', otherCa, '--pub', Buffer.from(bob.publicKey).toString('base64'), '--name', 'x', '--out', foreignCert])).code, 0);
  const revForeign = await cli(['revoke', '--dir', caDir, '--cert', foreignCert]);
  t.equal(revForeign.code, 1, 'cannot revoke another CA\'s certificate');
  t.match(revForeign.stderr, /another CA/);

  // Usage errors: one message line (plus usage), exit 2.
  for (const args of [[], ['frobnicate'], ['init'], ['sign', '--dir', caDir, '--name', 'x', '--out', join(dir, 'x.cert')],
    ['sign', '--dir', caDir, '--key', nodeKey, '--pub', 'AAAA', '--name', 'x', '--out', join(dir, 'x.cert')],
    ['init', '--dir', caDir, '--bogus'], ['show'], ['revoke', '--dir', caDir], ['init', '--dir', dir, '--days', 'soon'],
    ['revoke', '--dir', caDir, '--serial', 'xyz'], ['show', certFile, '--dir', caDir]]) {
    const r = await cli(args);
    t.equal(r.code, 2, `usage error: ${args.join(' ') || '(none)'}`);
    t.match(r.stderr, /^brunet-ca: [^\n]+\nusage: brunet-ca/, 'message then usage');
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  // Runtime errors: one line, exit 1.
  for (const args of [['show', join(dir, 'missing.cert')], ['show', nodeKey], ['sign', '--dir', join(dir, 'nope'), '--key', nodeKey, '--name', 'x', '--out', join(dir, 'y.cert')]]) {
    const r = await cli(args);
    t.equal(r.code, 1, `error: ${args.join(' ')}`);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    t.match(r.stderr, /^brunet-ca: /);
  }
});

t.test('CLI-issued certificates and revocation list drive real membership checks', async (t) => {
  const dir = tempDir(t);
  const caDir = join(dir, 'ca');
  t.equal((await cli(['init', '--dir', caDir, '--name', 'E2E'])).code, 0);
  const caPub = loadCaCertificate(join(caDir, 'ca.pub')).publicKey;
  const net = new MemoryNetwork();
  const mk = async (name: string) => {
    const keyFile = join(dir, `${name}.key`);
    const id = loadOrCreateIdentity(keyFile);
    const certFile = join(dir, `${name}.cert`);
    const r = await cli(['sign', '--dir', caDir, '--key', keyFile, '--name', name, '--out', certFile]);
    t.equal(r.code, 0, r.stderr);
    return { id, certFile, cert: new Uint8Array(readFileSync(certFile)) };
  };
  const listFile = join(caDir, 'revoked.list');
  const w = new RevocationWatcher({ file: listFile, caPublicKey: caPub, clock: realClock });
  w.start();
  t.teardown(() => w.stop());
  const ls: SecureEdgeListener[] = [];
  const nodes = [];
  for (const name of ['x', 'y']) {
    const n = await mk(name);
    const l = new SecureEdgeListener(net.listener(), {
      identity: n.id, groupKey: KEY, namespace: NS, clock: realClock, random: cryptoRandom, certificate: n.cert,
      verifyPeer: membershipVerifier({ caPublicKey: caPub, clock: realClock, revocations: w.revoked }),
    });
    t.teardown(() => l.stop());
    await l.start();
    ls.push(l);
    nodes.push(n);
  }
  const e = await ls[0]!.createEdge(ls[1]!.localTAs()[0]!);
  t.ok(e.established);
  t.equal(decodeCertificate(e.peer.certificate!).name, 'y');
  const closed: SecureEdge[] = [];
  const w2 = new RevocationWatcher({ file: listFile, caPublicKey: caPub, clock: realClock, onChange: (list) => closed.push(...enforceRevocations(ls, list)) });
  w2.start();
  t.teardown(() => w2.stop());
  t.equal((await cli(['revoke', '--dir', caDir, '--cert', nodes[1]!.certFile])).code, 0);
  await waitFor('revoked by the CLI list', () => e.closed, 4000);
  t.ok(closed.length >= 1);
  await t.rejects(ls[1]!.createEdge(ls[0]!.localTAs()[0]!), { message: /revoked/ });
});
