// The certificate and revocation-list encodings are frozen: these golden bytes were made by
// the encoder before src/edge/ca/ was split out of one file, from a fixed CA seed, member
// key, serial source and time (Ed25519 signatures are deterministic). Any change to them
// breaks every issued certificate and list.
import t from 'tap';
import { CertificateAuthority, caCertificate, signMember, signRevocations } from '../src/edge/ca/authority.js';
import { KIND_CA, KIND_MEMBER, decodeCertificate, formatSerial } from '../src/edge/ca/certificate.js';
import { decodeRevocations } from '../src/edge/ca/crl.js';
import { readCaCertificate, verifyCertificate, verifyRevocations } from '../src/edge/ca/verify.js';
import { addressOf } from '../src/edge/identity.js';
import type { RandomSource } from '../src/util/random.js';

const SEED = new Uint8Array(32).map((_, i) => i + 1);
const MEMBER = new Uint8Array(32).map((_, i) => 200 - i);
const NOW = 1_767_225_600_000; // 2026-01-01T00:00:00Z
const DAY = 86_400_000;

const GOLDEN_MEMBER_CERT =
  '42524e43010165b60673d6ed884bc8c7c6c5c4c3c2c1c0bfbebdbcbbbab9b8b7b6b5b4b3b2b1b0afaeadacabaaa9bffa1cab'
  + '6d52c488401800ce69da3b9978a3b16c08616c69636520c3a90000019b76d614200000019c115970000b30557a9fc4e90eb8'
  + '290de55d2118f11af2d732e7e2cd47812d1e5c4b0f6ab34e15879530d4e34bd63a74debd2e74d6845a393fa277deee9cb7a6'
  + '6928b07e73e578691734894c05';
const GOLDEN_CA_CERT =
  '42524e43010265b60673d6ed884b79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad0496644e1cf1bb'
  + '1520cd0d9a99ee1f4ae7521647dd6a5209676f6c64656e2043410000019b76d61420000001e4e3c6600033587da2c7ec1136'
  + '3ded29ee76f09dbbbe5d0bbab015d0ee3772b41e59b8632e7cfee5146eae471c7baa044dfc4e89673ba4590ebc4ab4ef9387'
  + 'dfa1c8154bf5947a45200da61d00';
const GOLDEN_REVOCATIONS =
  '42524e520165b60673d6ed884b0000019b76daa8010000000300000000000000010000000000000005ffffffffffffffff00'
  + '000002ababababababababababababababababababababababababababababababababc8c7c6c5c4c3c2c1c0bfbebdbcbbba'
  + 'b9b8b7b6b5b4b3b2b1b0afaeadacabaaa9f0b783767690c7a7abfbcd41b5989dd3e113e24f26ad15eac7f53d6df5cdcc78a2'
  + '96bb23f5c76411deef002267293f2c4598e671453de126633005287ad0d707';

/** A predictable serial source: byte i is (37 i + 11) mod 256, counting across calls. */
function counterRandom(): RandomSource {
  let n = 0;
  return { bytes: (k: number) => new Uint8Array(k).map(() => (n++ * 37 + 11) & 0xff) } as RandomSource;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

t.test('issuing reproduces the golden certificate and revocation-list bytes', async (t) => {
  const ca = CertificateAuthority.fromSeed(SEED, 'golden CA');
  const random = counterRandom();
  t.equal(hex(signMember(ca, MEMBER, 'alice é', 30, { now: NOW, random })), GOLDEN_MEMBER_CERT, 'member certificate');
  t.equal(hex(caCertificate(ca, 3650, { now: NOW, random })), GOLDEN_CA_CERT, 'CA certificate');
  const list = signRevocations(ca, { serials: [5n, 1n, 0xffffffffffffffffn], keys: [MEMBER, 'AB'.repeat(32)] }, NOW + 1);
  t.equal(hex(list), GOLDEN_REVOCATIONS, 'revocation list (serials and keys sorted, key hex lower-cased)');
});

t.test('the golden bytes decode and verify field by field', async (t) => {
  const caInfo = readCaCertificate(unhex(GOLDEN_CA_CERT));
  t.equal(caInfo.name, 'golden CA');
  t.equal(caInfo.notAfter, NOW + 3650 * DAY);
  const ca = decodeCertificate(unhex(GOLDEN_CA_CERT));
  t.equal(ca.kind, KIND_CA);

  const c = decodeCertificate(unhex(GOLDEN_MEMBER_CERT));
  t.equal(c.kind, KIND_MEMBER);
  t.equal(c.name, 'alice é');
  t.equal(hex(c.publicKey), hex(MEMBER));
  t.ok(c.address.equals(addressOf(MEMBER)), 'address derived from the key');
  t.equal(c.notBefore, NOW - 5 * 60_000, 'notBefore backdated 5 minutes');
  t.equal(c.notAfter, NOW + 30 * DAY);
  t.equal(formatSerial(c.serial), '0b30557a9fc4e90e');
  t.equal(hex(c.caKeyId), hex(caInfo.keyId));
  const v = verifyCertificate(unhex(GOLDEN_MEMBER_CERT), caInfo.publicKey, NOW);
  t.equal(v.name, 'alice é');
  t.throws(() => verifyCertificate(unhex(GOLDEN_MEMBER_CERT), caInfo.publicKey, NOW + 30 * DAY), { name: 'CertificateError', message: /certificate expired at / }, 'expired from notAfter on');

  const r = verifyRevocations(unhex(GOLDEN_REVOCATIONS), caInfo.publicKey);
  t.equal(r.issuedAt, NOW + 1);
  t.same([...r.serials], [1n, 5n, 0xffffffffffffffffn]);
  t.same([...r.keys], ['ab'.repeat(32), hex(MEMBER)]);
  t.equal(decodeRevocations(unhex(GOLDEN_REVOCATIONS)).signature.length, 64);
});
