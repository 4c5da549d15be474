import t from 'tap';
import fc from 'fast-check';
import { TaError, TransportAddress } from '../src/transport/ta.js';

t.test('parse and format', async (t) => {
  const u = TransportAddress.parse('brunet.udp://192.168.1.5:40000');
  t.equal(u.kind, 'udp');
  t.equal(u.host, '192.168.1.5');
  t.equal(u.port, 40000);
  t.equal(u.toString(), 'brunet.udp://192.168.1.5:40000');
  const c = TransportAddress.parse('brunet.tcp://example.org:80');
  t.same([c.kind, c.host, c.port], ['tcp', 'example.org', 80]);
  const f = TransportAddress.parse('brunet.function://localhost:3');
  t.same([f.kind, f.host, f.port], ['function', 'localhost', 3]);
  t.equal(TransportAddress.parse('  brunet.udp://1.2.3.4:5\n').key, 'brunet.udp://1.2.3.4:5', 'trims whitespace');
  t.ok(u.equals(new TransportAddress('udp', '192.168.1.5', 40000)));
  t.notOk(u.equals(new TransportAddress('tcp', '192.168.1.5', 40000)));
});

t.test('IPv6 hosts are bracketed', async (t) => {
  const a = TransportAddress.parse('brunet.udp://[::1]:5000');
  t.equal(a.host, '::1');
  t.equal(a.key, 'brunet.udp://[::1]:5000');
  const b = TransportAddress.parse('brunet.tcp://[2001:db8::42]:65535');
  t.same([b.kind, b.host, b.port], ['tcp', '2001:db8::42', 65535]);
  t.equal(new TransportAddress('udp', 'fe80::1', 9).toString(), 'brunet.udp://[fe80::1]:9');
  t.ok(TransportAddress.parse(b.key).equals(b));
});

t.test('round trip', async (t) => {
  const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
  fc.assert(fc.property(fc.constantFrom('udp', 'tcp', 'function'), ipv4, fc.integer({ min: 1, max: 65535 }), (k, h, p) => {
    const s = `brunet.${k}://${h}:${p}`;
    const ta = TransportAddress.parse(s);
    t.equal(ta.toString(), s);
    t.equal(ta.port, p);
  }), { numRuns: 100 });
});

t.test('rejects bad TAs', async (t) => {
  const bad = [
    '', 'junk', 'brunet.udp://', 'http://1.2.3.4:5000', 'udp://1.2.3.4:5000', 'brunet.foo://1.2.3.4:5000',
    'brunet.udp://1.2.3.4', 'brunet.udp://1.2.3.4:', 'brunet.udp://1.2.3.4:0', 'brunet.udp://1.2.3.4:70000',
    'brunet.udp://1.2.3.4:123456', 'brunet.udp://1.2.3.4:-1', 'brunet.udp://1.2.3.4:5x', 'brunet.udp://:5000',
    'brunet.udp://::1:5000', 'brunet.udp://[zz::1]:5000', 'brunet.udp://[1.2.3.4]:5000', 'brunet.udp://a b:5',
    'brunet.udp://1.2.3.4:5000 trailing',
  ];
  for (const s of bad) t.throws(() => TransportAddress.parse(s), TaError, JSON.stringify(s));
  t.throws(() => TransportAddress.parse('brunet.udp://1.2.3.4:0'), /out of range/);
  t.throws(() => TransportAddress.parse('brunet.udp://1.2.3.4:70000'), /out of range/);
  t.throws(() => TransportAddress.parse('brunet.foo://1.2.3.4:5'), /unsupported transport type "foo"/);
});
