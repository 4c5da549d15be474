// SocialVPN's DNS responder: answers built from dns-packet queries (A, PTR, NODATA, NXDOMAIN,
// REFUSED, NOTIMP, FORMERR, EDNS, truncation), arbitrary and mutated datagrams never throw and
// always get a well-formed response or none, and DnsServer answers real UDP queries, including
// one hand-built by Python as an independent client.
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import dnsPacket, { type DecodedPacket, type Packet, type Question } from 'dns-packet';
import fc from 'fast-check';
import t from 'tap';
import { ANSWER_TTL, DnsServer, answerDnsQuery, type SvpnNames } from '../src/vpn/social/dns-responder.js';

const LAPTOP = 0xac1f0002; // 172.31.0.2
const PHONE = 0xac1f0003; // 172.31.0.3
const A_RECORDS: Record<string, number> = { 'laptop.alice.svpn': LAPTOP, 'phone.alice.svpn': PHONE, 'alice.svpn': PHONE };
const names: SvpnNames = {
  lookupA: (n) => A_RECORDS[n],
  lookupPtr: (ip) => (ip === LAPTOP ? 'laptop.alice.svpn' : ip === PHONE ? 'phone.alice.svpn' : undefined),
};

function query(q: Question, extra: Packet = {}): Buffer {
  return dnsPacket.encode({ type: 'query', id: 0x1234, flags: dnsPacket.RECURSION_DESIRED, questions: [q], ...extra });
}

function ask(q: Question, extra: Packet = {}, n: SvpnNames = names): DecodedPacket & { rcode: string } {
  const r = answerDnsQuery(query(q, extra), n);
  if (r === undefined) throw new Error('no response');
  return dnsPacket.decode(Buffer.from(r)) as DecodedPacket & { rcode: string };
}

t.test('A queries for svpn names', async (t) => {
  const r = ask({ name: 'laptop.alice.svpn', type: 'A' });
  t.equal(r.rcode, 'NOERROR');
  t.ok(r.flag_qr && r.flag_aa && r.flag_rd, 'QR, AA and RD set');
  t.notOk(r.flag_ra, 'no recursion offered');
  t.equal(r.id, 0x1234, 'ID copied');
  t.same(r.questions, [{ name: 'laptop.alice.svpn', type: 'A', class: 'IN' }], 'question echoed');
  t.same(r.answers?.map((a) => [a.name, a.type, (a as { ttl?: number }).ttl, a.type === 'A' && a.data]), [['laptop.alice.svpn', 'A', ANSWER_TTL, '172.31.0.2']]);

  const user = ask({ name: 'alice.svpn', type: 'A' });
  t.same(user.answers?.map((a) => a.type === 'A' && a.data), ['172.31.0.3'], '<user>.svpn: the most recently seen device');

  const mixed = ask({ name: 'LapTop.ALICE.Svpn.', type: 'A' });
  t.equal(mixed.rcode, 'NOERROR', 'case and a trailing dot do not matter');
  t.same(mixed.answers?.map((a) => [a.name, a.type === 'A' && a.data]), [['LapTop.ALICE.Svpn', '172.31.0.2']], 'the answer keeps the asked case');

  const any = ask({ name: 'phone.alice.svpn', type: 'ANY' as string as Question['type'] }); // not in @types/dns-packet's list
  t.same(any.answers?.map((a) => [a.type, a.type === 'A' && a.data]), [['A', '172.31.0.3']], 'ANY gets the A record');

  const noRd = dnsPacket.decode(Buffer.from(answerDnsQuery(dnsPacket.encode({ id: 7, questions: [{ name: 'alice.svpn', type: 'A' }] }), names)!));
  t.notOk(noRd.flag_rd, 'RD only when asked');
});

t.test('NODATA, NXDOMAIN and REFUSED', async (t) => {
  const aaaa = ask({ name: 'laptop.alice.svpn', type: 'AAAA' });
  t.equal(aaaa.rcode, 'NOERROR', 'AAAA for a known name: NODATA');
  t.same(aaaa.answers, []);
  t.ok(aaaa.flag_aa);

  const apex = ask({ name: 'svpn', type: 'A' });
  t.equal(apex.rcode, 'NOERROR', 'the zone apex exists');
  t.same(apex.answers, []);

  const unknown = ask({ name: 'tablet.alice.svpn', type: 'A' });
  t.equal(unknown.rcode, 'NXDOMAIN');
  t.same(unknown.answers, []);
  t.ok(unknown.flag_aa);
  t.same(unknown.authorities, [], 'no SOA: negative answers are not cached');
  t.equal(ask({ name: 'bob.svpn', type: 'AAAA' }).rcode, 'NXDOMAIN', 'unknown names are NXDOMAIN for any type');

  for (const name of ['example.com', 'svpn.example.com', 'notsvpn', '.']) {
    const r = ask({ name, type: 'A' });
    t.equal(r.rcode, 'REFUSED', `${name}: not ours`);
    t.notOk(r.flag_aa, `${name}: not authoritative`);
    t.same(r.answers, []);
  }
  t.equal(ask({ name: 'laptop.alice.svpn', type: 'A', class: 'CH' }).rcode, 'REFUSED', 'class CH is not ours');
});

t.test('PTR queries', async (t) => {
  const hit = ask({ name: '2.0.31.172.in-addr.arpa', type: 'PTR' });
  t.equal(hit.rcode, 'NOERROR');
  t.same(hit.answers?.map((a) => [a.name, a.type, (a as { ttl?: number }).ttl, a.type === 'PTR' && a.data]),
    [['2.0.31.172.in-addr.arpa', 'PTR', ANSWER_TTL, 'laptop.alice.svpn']]);
  t.same(ask({ name: '3.0.31.172.IN-ADDR.ARPA.', type: 'PTR' }).answers?.map((a) => a.type === 'PTR' && a.data), ['phone.alice.svpn'], 'case-insensitive');

  t.equal(ask({ name: '9.0.31.172.in-addr.arpa', type: 'PTR' }).rcode, 'NXDOMAIN', 'no device there');
  t.equal(ask({ name: '2.0.31.172.in-addr.arpa', type: 'A' }).rcode, 'NOERROR', 'a known address, asked for A: NODATA');
  t.same(ask({ name: '2.0.31.172.in-addr.arpa', type: 'A' }).answers, []);
  t.equal(ask({ name: '31.172.in-addr.arpa', type: 'PTR' }).rcode, 'NOERROR', 'an ancestor of addresses: NODATA');
  for (const name of ['02.0.31.172.in-addr.arpa', '256.0.31.172.in-addr.arpa', 'x.0.31.172.in-addr.arpa', '1.2.0.31.172.in-addr.arpa']) {
    t.equal(ask({ name, type: 'PTR' }).rcode, 'NXDOMAIN', `${name}: no such address`);
  }

  const subnet: SvpnNames = { ...names, servesPtr: (ip) => ip >>> 16 === 0xac1f };
  t.equal(ask({ name: '2.0.31.172.in-addr.arpa', type: 'PTR' }, {}, subnet).rcode, 'NOERROR', 'in the subnet');
  t.equal(ask({ name: '8.8.8.8.in-addr.arpa', type: 'PTR' }, {}, subnet).rcode, 'REFUSED', 'outside the subnet: the next server may know');
  t.equal(ask({ name: '8.8.8.8.in-addr.arpa', type: 'PTR' }).rcode, 'NXDOMAIN', 'without servesPtr every address is ours');
});

t.test('the caller\'s mistakes are SERVFAIL, never a throw', async (t) => {
  const throwing: SvpnNames = { lookupA: () => { throw new Error('boom'); }, lookupPtr: () => { throw new Error('boom'); } };
  t.equal(ask({ name: 'laptop.alice.svpn', type: 'A' }, {}, throwing).rcode, 'SERVFAIL');
  t.equal(ask({ name: '2.0.31.172.in-addr.arpa', type: 'PTR' }, {}, throwing).rcode, 'SERVFAIL');
  const bad: SvpnNames = { lookupA: () => 2 ** 32, lookupPtr: () => 'a..b' };
  t.equal(ask({ name: 'laptop.alice.svpn', type: 'A' }, {}, bad).rcode, 'SERVFAIL', 'an address that is no u32');
  t.equal(ask({ name: '2.0.31.172.in-addr.arpa', type: 'PTR' }, {}, bad).rcode, 'SERVFAIL', 'a name DNS cannot carry');
  t.equal(ask({ name: '2.0.31.172.in-addr.arpa', type: 'PTR' }, {}, { ...bad, lookupPtr: () => 'x'.repeat(64) + '.svpn' }).rcode, 'SERVFAIL', 'a label over 63 bytes');
});

t.test('the question is echoed byte for byte', async (t) => {
  const q = query({ name: 'LAPTOP.alice.svpn', type: 'A' });
  q.writeUInt16BE(0xff00, q.length - 4); // a type dns-packet has no name for
  const r = Buffer.from(answerDnsQuery(q, names)!);
  t.same(r.subarray(12, q.length), q.subarray(12), 'same bytes');
  t.equal(r.readUInt16BE(6), 0, 'NODATA for the unknown type');

  const chaos = query({ name: 'laptop.alice.svpn', type: 'A' });
  chaos.writeUInt16BE(0x1234, chaos.length - 2); // an unknown class
  const rc = Buffer.from(answerDnsQuery(chaos, names)!);
  t.equal(rc[3]! & 0xf, 5, 'unknown class: REFUSED');
  t.same(rc.subarray(12, chaos.length), chaos.subarray(12), 'with the question as asked');
});

t.test('opcodes, EDNS and truncation', async (t) => {
  const status = query({ name: 'alice.svpn', type: 'A' });
  status.writeUInt16BE((2 << 11) | 0x0100, 2); // opcode STATUS, RD
  const r = Buffer.from(answerDnsQuery(status, names)!);
  t.same([r.readUInt16BE(0), r.readUInt16BE(2), r.readUInt16BE(4), r.length], [0x1234, 0x8000 | (2 << 11) | 0x0100 | 4, 0, 12], 'NOTIMP, opcode and RD copied');

  const edns = ask({ name: 'alice.svpn', type: 'A' }, { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] });
  t.equal(edns.rcode, 'NOERROR');
  t.same(edns.additionals?.map((a) => a.type === 'OPT' && [a.udpPayloadSize, a.ednsVersion]), [[1232, 0]], 'an OPT record for an OPT record');
  t.equal(ask({ name: 'alice.svpn', type: 'A' }).additionals?.length, 0, 'none without');

  const v1 = ask({ name: 'alice.svpn', type: 'A' }, { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 1, flags: 0, flag_do: false, options: [] }] });
  t.same([v1.rcode, v1.answers, v1.additionals?.map((a) => a.type === 'OPT' && a.extendedRcode)], ['NOERROR', [], [1]], 'EDNS version 1: BADVERS (extended rcode 16)');

  const long = `${'d'.repeat(63)}.${'u'.repeat(63)}.${'x'.repeat(63)}.${'y'.repeat(56)}.svpn`; // 253 characters, the most a name has
  const big: SvpnNames = { ...names, lookupA: (n) => (n === long ? LAPTOP : undefined) };
  const tc = ask({ name: long, type: 'A' }, {}, big);
  t.ok(tc.flag_tc, 'over 512 bytes without EDNS: truncated');
  t.same([tc.rcode, tc.answers], ['NOERROR', []]);
  const fits = ask({ name: long, type: 'A' }, { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] }, big);
  t.same([fits.flag_tc, fits.answers?.length], [false, 1], 'fits the EDNS size');
});

t.test('malformed queries', async (t) => {
  t.equal(answerDnsQuery(new Uint8Array(0), names), undefined, 'empty: nothing to reply to');
  t.equal(answerDnsQuery(new Uint8Array(11), names), undefined, 'shorter than a header');
  const resp = query({ name: 'alice.svpn', type: 'A' });
  resp[2]! |= 0x80;
  t.equal(answerDnsQuery(resp, names), undefined, 'a response is never answered');

  const formerr = (b: Uint8Array, what: string): void => {
    const r = answerDnsQuery(b, names);
    t.ok(r !== undefined && r.length === 12, `${what}: header-only reply`);
    const d = dnsPacket.decode(Buffer.from(r!)) as DecodedPacket & { rcode: string };
    t.same([d.id, d.rcode, d.flag_qr], [0x1234, 'FORMERR', true], `${what}: FORMERR`);
  };
  const ok = query({ name: 'alice.svpn', type: 'A' });
  formerr(ok.subarray(0, ok.length - 3), 'truncated question');
  formerr(ok.subarray(0, 12), 'QDCOUNT 1 and no question');
  formerr(dnsPacket.encode({ id: 0x1234, questions: [] }), 'no question');
  formerr(dnsPacket.encode({ id: 0x1234, questions: [{ name: 'a.svpn', type: 'A' }, { name: 'b.svpn', type: 'A' }] }), 'two questions');
  formerr(Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, 0x61, 0x2e, 0x62, 5, 0x61, 0x6c, 0x69, 0x63, 0x65, 4, 0x73, 0x76, 0x70, 0x6e, 0, 0, 1, 0, 1]), 'a dot inside a label ("a.b".alice.svpn)');
  formerr(Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 0x0c, 0, 1, 0, 1]), 'a pointer loop in the question');
  formerr(Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2, 0xff, 0xfe, 4, 0x73, 0x76, 0x70, 0x6e, 0, 0, 1, 0, 1]), 'a label that is not UTF-8');
  const twoOpt = query({ name: 'alice.svpn', type: 'A' }, { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 512, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }, { type: 'OPT', name: '.', udpPayloadSize: 512, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] });
  formerr(twoOpt, 'two OPT records');
});

/** A response must be absent or a well-formed reply to the query's ID. */
function checkResponse(q: Uint8Array): string | undefined {
  let r: Uint8Array | undefined;
  try { r = answerDnsQuery(q, names); } catch (e) { return `threw ${(e as Error).message}`; }
  if (r === undefined) return q.length < 12 || (q[2]! & 0x80) !== 0 ? undefined : 'no reply to a query with a header';
  if (r[0] !== q[0] || r[1] !== q[1] || (r[2]! & 0x80) === 0) return 'ID or QR wrong';
  try { dnsPacket.decode(Buffer.from(r)); } catch (e) { return `undecodable reply: ${(e as Error).message}`; }
  return undefined;
}

t.test('arbitrary bytes never throw; every reply decodes', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (b) => checkResponse(b) === undefined), { numRuns: 3000, seed: 15 });
  const seeds = [
    query({ name: 'laptop.alice.svpn', type: 'A' }),
    query({ name: '2.0.31.172.in-addr.arpa', type: 'PTR' }),
    query({ name: 'alice.svpn', type: 'AAAA' }, { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }] }),
  ];
  const mutated = fc.tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat())
    .map(([s, edits, cut]) => {
      const b = Uint8Array.from(s);
      for (const [at, v] of edits) b[at % b.length] = v;
      return b.subarray(0, b.length - (cut % 4 === 0 ? cut % b.length : 0));
    });
  const failures: string[] = [];
  fc.assert(fc.property(mutated, (b) => {
    const f = checkResponse(b);
    if (f !== undefined && failures.length < 5) failures.push(`${Buffer.from(b).toString('hex')}: ${f}`);
    return f === undefined;
  }), { numRuns: 5000, seed: 53 });
  t.same(failures, [], 'mutated queries');
});

/** Sends one datagram to port and waits (at most 3 s) for one reply. */
function udpAsk(port: number, payload: Uint8Array): Promise<Buffer> {
  const s = createSocket('udp4');
  return new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no reply in 3 s')), 3000);
    s.once('message', (m) => { clearTimeout(timer); resolve(m); });
    s.once('error', (e) => { clearTimeout(timer); reject(e); });
    s.send(payload, port, '127.0.0.1');
  }).finally(() => s.close());
}

t.test('DnsServer answers UDP queries on 127.0.0.1', async (t) => {
  const server = new DnsServer();
  await server.start('127.0.0.1', 0, names);
  t.teardown(() => server.stop());
  const port = server.port;
  t.ok(port >= 1024, `bound to a high port (${port})`);

  const r = dnsPacket.decode(await udpAsk(port, query({ name: 'laptop.alice.svpn', type: 'A' })));
  t.same(r.answers?.map((a) => a.type === 'A' && a.data), ['172.31.0.2'], 'A over UDP');
  t.equal((dnsPacket.decode(await udpAsk(port, query({ name: 'example.com', type: 'A' }))) as { rcode?: string }).rcode, 'REFUSED');
  t.equal((dnsPacket.decode(await udpAsk(port, query({ name: 'nobody.svpn', type: 'A' }))) as { rcode?: string }).rcode, 'NXDOMAIN');
  t.equal((dnsPacket.decode(await udpAsk(port, Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9]))) as { rcode?: string }).rcode, 'FORMERR');
  // A runt gets no reply; the server goes on serving.
  const runt = createSocket('udp4');
  await new Promise<void>((resolve) => runt.send(Buffer.from([1, 2, 3]), port, '127.0.0.1', () => resolve()));
  runt.close();

  // Python's socket module with a hand-built query: an independent client.
  const py = await new Promise<{ code: number | string | null; stdout: string; stderr: string }>((resolve) => {
    execFile('python3', ['-c', `
import socket, struct, sys
name = b"".join(bytes([len(l)]) + l for l in b"PHONE.alice.svpn".split(b".")) + b"\\0"
q = struct.pack(">HHHHHH", 0xbeef, 0x0100, 1, 0, 0, 0) + name + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.sendto(q, ("127.0.0.1", ${port}))
r, _ = s.recvfrom(4096)
rid, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", r[:12])
assert r[12:len(q)] == q[12:], "question echoed"
rdata = r[-4:]
rtype, rclass, ttl, rdlen = struct.unpack(">HHIH", r[-14:-4])
print(hex(rid), hex(flags), qd, an, rtype, rclass, ttl, rdlen, socket.inet_ntoa(rdata))
`], { encoding: 'utf8', timeout: 10_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (error.code ?? null) : 0, stdout, stderr }));
  });
  if (py.code === 'ENOENT') {
    if (process.env.CI) t.fail('python3 missing in CI'); else t.comment('python3 not found: skipping the Python client');
  } else {
    t.equal(py.code, 0, `python client ran: ${py.stderr}`);
    t.equal(py.stdout.trim(), `0xbeef 0x8500 1 1 1 1 ${ANSWER_TTL} 4 172.31.0.3`, 'ID, QR|AA|RD, one answer: A IN 172.31.0.3');
  }

  t.same(server.counters, { queries: 6, answered: 2, refused: 1, nxdomain: 1, malformed: 2 }, 'counters');
});

t.test('DnsServer: a port in use is a one-line error', async (t) => {
  const a = new DnsServer();
  await a.start('127.0.0.1', 0, names);
  t.teardown(() => a.stop());
  const b = new DnsServer();
  await t.rejects(b.start('127.0.0.1', a.port, names), { message: `cannot bind 127.0.0.1:${a.port}: EADDRINUSE` });
  await t.rejects(b.start('127.0.0.1', 70000, names), /DNS port 70000 out of range/);
  await b.stop();
  await a.stop();
  await a.stop();
  t.equal(a.port, 0, 'stopped twice, harmlessly');
});
