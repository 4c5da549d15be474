// DHCP for the VPN: the message codec, DHCPConfig parsing and range arithmetic, and the
// server's DISCOVER/OFFER/REQUEST/ACK exchange (with NAKs, retransmissions and per-MAC
// serialisation), plus robustness of every decoder against random and mutated input.
import t, { type Test } from 'tap';
import fc from 'fast-check';
import {
  ConfigError, DHCP_CONFIG_MAX_BYTES, DhcpRange, dhcpConfigKey, parseDhcpConfig, serializeDhcpConfig, type DhcpConfig,
} from '../src/vpn/dhcp-config.js';
import { DhcpServer, type DhcpServerOptions } from '../src/vpn/dhcp-server.js';
import {
  BOOTREPLY, BOOTREQUEST, DHCP_MAGIC, DhcpType, FLAG_BROADCAST, Opt, decodeDhcp, encodeDhcp, encodeDhcpReply, optIps,
  optText, optU32, optU8, type DhcpEncodeSpec, type DhcpMessage,
} from '../src/vpn/dhcp-wire.js';
import { BROADCAST_MAC, buildUdpFrame, decodeUdp, dstMac, ipToString, parseIp, parseMac, srcMac } from '../src/vpn/frames.js';
import { createLogger } from '../src/util/log.js';
import { seededRandom } from '../src/util/random.js';
import { WireError } from '../src/wire/value.js';
import { mutate } from '../bench/fuzz/mutate.js';
import { prng } from '../bench/fuzz/rng.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const ip = parseIp;
const CLIENT_MAC = parseMac('02:11:22:33:44:55');
const SERVER_MAC = parseMac('fe:aa:bb:cc:dd:ee');

function rejects(t: Test, fn: () => unknown, what: string, msg?: RegExp): void {
  try {
    fn();
    t.fail(`${what}: expected a WireError, but it decoded`);
  } catch (e) {
    t.ok(e instanceof WireError, `${what}: WireError (got ${(e as Error)?.name}: ${(e as Error)?.message})`);
    if (msg && e instanceof WireError) t.match(e.message, msg, `${what}: message`);
  }
}

function configError(t: Test, xml: string, element: string, reason: RegExp): void {
  try {
    parseDhcpConfig(xml);
    t.fail(`${element}: expected a ConfigError`);
  } catch (e) {
    t.ok(e instanceof ConfigError, `${element}: ConfigError (got ${(e as Error).name}: ${(e as Error).message})`);
    if (e instanceof ConfigError) {
      t.equal(e.element, element, `names ${element}`);
      t.match(e.reason, reason, `${element}: ${e.reason}`);
    }
  }
}

/** A client message as a whole Ethernet frame from 0.0.0.0:68 (or ciaddr) to broadcast:67. */
function clientFrame(type: number, o: Partial<DhcpEncodeSpec> & { requested?: number; serverId?: number; hostname?: string; mac?: Uint8Array } = {}): Uint8Array {
  const mac = o.mac ?? CLIENT_MAC;
  const options: Array<[number, Uint8Array]> = [[Opt.MessageType, optU8(type)]];
  if (o.requested !== undefined) options.push([Opt.RequestedIp, optU32(o.requested)]);
  if (o.serverId !== undefined) options.push([Opt.ServerId, optU32(o.serverId)]);
  if (o.hostname !== undefined) options.push([Opt.Hostname, optText(o.hostname)]);
  options.push([Opt.ParamList, Uint8Array.of(1, 3, 6, 15, 26, 51, 58, 59)]);
  const payload = encodeDhcp({ op: BOOTREQUEST, xid: 0x1234, chaddr: mac, options, ...o });
  const ciaddr = o.ciaddr ?? 0;
  return buildUdpFrame({
    srcMac: mac, dstMac: BROADCAST_MAC, srcIp: ciaddr, dstIp: 0xffffffff, srcPort: 68, dstPort: 67, payload,
  });
}

function replyOf(frame: Uint8Array | null): { udp: ReturnType<typeof decodeUdp>; msg: DhcpMessage; frame: Uint8Array } {
  if (frame === null) throw new Error('expected a reply, got null');
  const udp = decodeUdp(frame);
  return { udp, msg: decodeDhcp(udp.payload), frame };
}

// ---------------------------------------------------------------------------------------
// Codec

t.test('DHCP codec: layout and round trip', (t) => {
  const b = encodeDhcp({
    op: BOOTREQUEST, xid: 0xdeadbeef, chaddr: CLIENT_MAC, flags: FLAG_BROADCAST, secs: 3, ciaddr: ip('10.0.0.7'),
    options: [[Opt.MessageType, optU8(DhcpType.Request)], [Opt.RequestedIp, optU32(ip('10.0.0.7'))], [Opt.Hostname, optText('box')]],
  });
  t.equal(hex(b.subarray(0, 16)), '01010600' + 'deadbeef' + '0003' + '8000' + '0a000007');
  t.equal(hex(b.subarray(28, 34)), hex(CLIENT_MAC));
  t.equal(hex(b.subarray(236, 240)), '63825363', 'magic cookie');
  t.equal(hex(b.subarray(240)), '350103' + '32040a000007' + '0c03626f78' + 'ff');
  const m = decodeDhcp(b);
  t.equal(m.op, BOOTREQUEST);
  t.equal(m.xid, 0xdeadbeef);
  t.equal(m.flags, FLAG_BROADCAST);
  t.equal(m.secs, 3);
  t.equal(m.ciaddr, ip('10.0.0.7'));
  t.same(m.chaddr, CLIENT_MAC);
  t.equal(m.messageType, DhcpType.Request);
  t.equal(m.requestedIp, ip('10.0.0.7'));
  t.equal(m.hostname, 'box');
  t.equal(m.serverId, undefined);

  const opt = fc.tuple(fc.integer({ min: 1, max: 254 }), fc.uint8Array({ maxLength: 300 }))
    .filter(([c]) => !([Opt.Overload, Opt.MessageType, Opt.RequestedIp, Opt.ServerId, Opt.ClientId] as number[]).includes(c));
  fc.assert(fc.property(fc.record({
    op: fc.constantFrom(1, 2), xid: fc.integer({ min: 0, max: 0xffffffff }), flags: fc.integer({ min: 0, max: 0xffff }),
    ciaddr: fc.integer({ min: 0, max: 0xffffffff }), yiaddr: fc.integer({ min: 0, max: 0xffffffff }),
    siaddr: fc.integer({ min: 0, max: 0xffffffff }), giaddr: fc.integer({ min: 0, max: 0xffffffff }),
    chaddr: fc.uint8Array({ maxLength: 16 }), hops: fc.integer({ min: 0, max: 255 }), secs: fc.integer({ min: 0, max: 0xffff }),
    type: fc.integer({ min: 1, max: 8 }), opts: fc.uniqueArray(opt, { selector: ([c]) => c, maxLength: 6 }),
  }), (s) => {
    const options: Array<[number, Uint8Array]> = [[Opt.MessageType, optU8(s.type)], ...s.opts];
    const enc = encodeDhcp({ ...s, options });
    const d = decodeDhcp(enc);
    for (const k of ['op', 'xid', 'flags', 'ciaddr', 'yiaddr', 'siaddr', 'giaddr', 'hops', 'secs'] as const) {
      if (d[k] !== s[k]) throw new Error(`${k}: ${d[k]} != ${s[k]}`);
    }
    if (hex(d.chaddr) !== hex(s.chaddr) || d.messageType !== s.type) throw new Error('chaddr/type');
    // Values over 255 bytes are split and come back concatenated.
    for (const [c, v] of s.opts) if (hex(d.options.get(c)!) !== hex(v)) throw new Error(`option ${c}`);
    if (d.options.size !== s.opts.length + 1) throw new Error('option count');
    if (hex(encodeDhcp({ ...d, options: [...d.options] })) !== hex(enc)) throw new Error('re-encoding differs');
  }), { numRuns: 1000 });
  t.end();
});

t.test('DHCP codec: tolerated quirks', (t) => {
  // Hostname with a trailing NUL; missing END; PADs; an option split in two instances.
  const base = encodeDhcp({ op: BOOTREQUEST, xid: 1, chaddr: CLIENT_MAC, options: [] });
  const body = Uint8Array.from([0, 0, 53, 1, 1, 12, 4, 0x68, 0x6f, 0x73, 0, 55, 2, 1, 3, 55, 1, 6]);
  const b = new Uint8Array(240 + body.length);
  b.set(base.subarray(0, 240)); b.set(body, 240);
  const m = decodeDhcp(b);
  t.equal(m.messageType, 1);
  t.equal(m.hostname, 'hos');
  t.same([...m.paramList!], [1, 3, 6], 'RFC 3396 concatenation');

  // Overload: option 52 = 3 moves options into file, then sname.
  const ov = encodeDhcp({ op: BOOTREQUEST, xid: 2, chaddr: CLIENT_MAC, options: [[Opt.Overload, optU8(3)]] });
  ov.set([53, 1, 3, 255], 108); // file
  ov.set([50, 4, 10, 0, 0, 9, 255], 44); // sname
  const mo = decodeDhcp(ov);
  t.equal(mo.messageType, 3);
  t.equal(ipToString(mo.requestedIp!), '10.0.0.9');

  // An undecodable hostname is dropped, not fatal.
  const bad = encodeDhcp({ op: BOOTREQUEST, xid: 3, chaddr: CLIENT_MAC, options: [[Opt.Hostname, Uint8Array.of(0xff, 0xfe)]] });
  t.equal(decodeDhcp(bad).hostname, undefined);
  t.end();
});

t.test('DHCP codec: malformed input', (t) => {
  const good = encodeDhcp({ op: BOOTREQUEST, xid: 1, chaddr: CLIENT_MAC, options: [[Opt.MessageType, optU8(1)]] });
  const mod = (fn: (b: Uint8Array) => void): Uint8Array => { const b = good.slice(); fn(b); return b; };
  rejects(t, () => decodeDhcp(good.subarray(0, 239)), 'short', /shorter than/);
  rejects(t, () => decodeDhcp(mod((b) => { b[0] = 3; })), 'op 3', /op 3/);
  rejects(t, () => decodeDhcp(mod((b) => { b[2] = 17; })), 'hlen 17', /hardware address length/);
  rejects(t, () => decodeDhcp(mod((b) => { b[239] ^= 1; })), 'cookie', /magic cookie/);
  rejects(t, () => decodeDhcp(mod((b) => { b[241] = 5; })), 'option overrun', /runs past the end/);
  rejects(t, () => decodeDhcp(good.subarray(0, 241)), 'no length byte', /no length byte/);
  rejects(t, () => decodeDhcp(mod((b) => { b.set([53, 2, 1, 1], 240); })), 'message type length 2', /message type/);
  const opt = (code: number, v: number[]) => encodeDhcp({ op: BOOTREQUEST, xid: 1, chaddr: CLIENT_MAC, options: [[code, Uint8Array.from(v)]] });
  rejects(t, () => decodeDhcp(opt(Opt.RequestedIp, [1, 2, 3])), 'requested IP length 3', /requested IP/);
  rejects(t, () => decodeDhcp(opt(Opt.ServerId, [1, 2, 3, 4, 5])), 'server id length 5', /server identifier/);
  rejects(t, () => decodeDhcp(opt(Opt.ClientId, [1])), 'client id length 1', /client identifier/);
  rejects(t, () => decodeDhcp(opt(Opt.Overload, [4])), 'overload 4', /overload/);
  const ov = opt(Opt.Overload, [1]); ov.set([53, 9], 234); // file ends at 236
  rejects(t, () => decodeDhcp(ov), 'overrun in file', /file: option 53/);
  t.end();
});

t.test('DHCP replies: options sent', (t) => {
  const req = decodeDhcp(decodeUdp(clientFrame(DhcpType.Discover)).payload);
  const b = encodeDhcpReply({
    request: req, type: DhcpType.Offer, serverId: ip('10.250.0.1'), yiaddr: ip('10.250.0.77'),
    leaseTime: 3600, subnetMask: ip('255.255.0.0'), mtu: 1200, domainName: 'ipop',
  });
  t.ok(b.length >= 300, 'padded to the BOOTP minimum');
  const m = decodeDhcp(b);
  t.equal(m.op, BOOTREPLY);
  t.equal(m.xid, 0x1234);
  t.same(m.chaddr, CLIENT_MAC);
  t.equal(m.yiaddr, ip('10.250.0.77'));
  t.equal(m.messageType, DhcpType.Offer);
  t.equal(m.serverId, ip('10.250.0.1'));
  t.equal(hex(m.options.get(Opt.LeaseTime)!), '00000e10');
  t.equal(hex(m.options.get(Opt.RenewalT1)!), '00000708', 'T1 = lease/2');
  t.equal(hex(m.options.get(Opt.RebindingT2)!), '00000c4e', 'T2 = 7/8 lease');
  t.equal(hex(m.options.get(Opt.SubnetMask)!), 'ffff0000');
  t.equal(hex(m.options.get(Opt.Mtu)!), '04b0', 'MTU 1200');
  t.equal(Buffer.from(m.options.get(Opt.DomainName)!).toString(), 'ipop');
  t.notOk(m.options.has(Opt.Router), 'no router option unless given');
  t.notOk(m.options.has(Opt.Dns));

  const withRouter = decodeDhcp(encodeDhcpReply({ request: req, type: DhcpType.Ack, serverId: 1, yiaddr: 2, router: ip('10.250.0.1'), dns: [ip('10.250.0.1'), ip('10.250.0.53')] }));
  t.equal(hex(withRouter.options.get(Opt.Router)!), '0afa0001');
  t.equal(hex(withRouter.options.get(Opt.Dns)!), hex(optIps([ip('10.250.0.1'), ip('10.250.0.53')])));

  const nak = decodeDhcp(encodeDhcpReply({ request: req, type: DhcpType.Nak, serverId: 9, yiaddr: 5, leaseTime: 60, mtu: 1200, message: 'taken' }));
  t.equal(nak.yiaddr, 0, 'NAK carries no address');
  t.same([...nak.options.keys()].sort((a, b) => a - b), [Opt.MessageType, Opt.ServerId, Opt.Message], 'NAK: type, server id, message only');
  t.end();
});

// ---------------------------------------------------------------------------------------
// DHCPConfig

const SAMPLE = `<?xml version="1.0"?>
<DHCPConfig>
  <Namespace>ns</Namespace>
  <Netmask>255.255.255.0</Netmask>
  <IPBase>192.168.10.0</IPBase>
  <LeaseTime>3600</LeaseTime>
  <ReservedIPs>
    <ReservedIP><IPBase>192.168.10.0</IPBase><Mask>255.255.255.240</Mask></ReservedIP>
  </ReservedIPs>
</DHCPConfig>`;

t.test('DHCPConfig: parse and serialise', (t) => {
  const c = parseDhcpConfig(SAMPLE);
  t.same(c, { namespace: 'ns', netmask: ip('255.255.255.0'), ipBase: ip('192.168.10.0'), leaseTime: 3600,
    reserved: [{ base: ip('192.168.10.0'), mask: ip('255.255.255.240') }] });
  const s = serializeDhcpConfig(c);
  t.equal(s, '<DHCPConfig><Namespace>ns</Namespace><Netmask>255.255.255.0</Netmask><IPBase>192.168.10.0</IPBase>'
    + '<LeaseTime>3600</LeaseTime><ReservedIPs><ReservedIP><IPBase>192.168.10.0</IPBase><Mask>255.255.255.240</Mask>'
    + '</ReservedIP></ReservedIPs></DHCPConfig>');
  t.notMatch(s, /\s/, 'whitespace-free');
  t.same(parseDhcpConfig(s), c, 'round trip');
  t.equal(dhcpConfigKey('ns'), 'dhcp:ns');

  // Brunet's sample, no ReservedIPs; LeaseTime defaults to 3600 when absent.
  const b = parseDhcpConfig('<DHCPConfig><Namespace>x</Namespace><Netmask>255.255.0.0</Netmask><IPBase>10.250.0.0</IPBase></DHCPConfig>');
  t.equal(b.leaseTime, 3600);
  t.same(b.reserved, []);
  t.equal(serializeDhcpConfig(b), '<DHCPConfig><Namespace>x</Namespace><Netmask>255.255.0.0</Netmask><IPBase>10.250.0.0</IPBase><LeaseTime>3600</LeaseTime></DHCPConfig>');
  // XmlSerializer's namespace attributes are accepted; markup in the namespace is escaped.
  const esc = parseDhcpConfig('<DHCPConfig xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><Namespace>a&amp;b&lt;c</Namespace><Netmask>255.255.255.0</Netmask><IPBase>10.0.0.0</IPBase></DHCPConfig>');
  t.equal(esc.namespace, 'a&b<c');
  t.same(parseDhcpConfig(serializeDhcpConfig(esc)), esc);

  fc.assert(fc.property(
    fc.string({ minLength: 1, maxLength: 30 }).filter((s) => s === s.trim() && !/[\u0000-\u001f\u007f]/.test(s)),
    fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 1, max: 86400 }),
    fc.array(fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 })), { maxLength: 5 }),
    (ns, prefix, base, lease, res) => {
      const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
      const pm = (p: number) => (p === 0 ? 0 : (0xffffffff << (32 - p)) >>> 0);
      const cfg: DhcpConfig = { namespace: ns, netmask: mask, ipBase: (base & mask) >>> 0, leaseTime: lease,
        reserved: res.map(([b, p]) => ({ base: (b & pm(p)) >>> 0, mask: pm(p) })) };
      const back = parseDhcpConfig(serializeDhcpConfig(cfg));
      if (JSON.stringify(back) !== JSON.stringify(cfg)) throw new Error(`${JSON.stringify(back)} != ${JSON.stringify(cfg)}`);
    }), { numRuns: 500 });
  t.end();
});

t.test('DHCPConfig: validation errors name the field', (t) => {
  const cfg = (inner: string) => `<DHCPConfig>${inner}</DHCPConfig>`;
  const NS = '<Namespace>ns</Namespace>', NM = '<Netmask>255.255.255.0</Netmask>', IB = '<IPBase>192.168.10.0</IPBase>';
  configError(t, '<DHCPConfig><Namespace>', 'DHCPConfig:1:13', /not well-formed XML: <Namespace> is not closed/);
  configError(t, '', 'DHCPConfig', /no root element/);
  configError(t, '<IpopConfig/>', 'DHCPConfig', /must be <DHCPConfig>/);
  configError(t, cfg(NM + IB), 'DHCPConfig/Namespace', /missing/);
  configError(t, cfg('<Namespace> </Namespace>' + NM + IB), 'DHCPConfig/Namespace', /empty/);
  configError(t, cfg(NS + IB), 'DHCPConfig/Netmask', /missing/);
  configError(t, cfg(NS + NM), 'DHCPConfig/IPBase', /missing/);
  configError(t, cfg(NS + NS + NM + IB), 'DHCPConfig/Namespace', /appears 2 times/);
  configError(t, cfg(NS + NM + IB + '<Gateway>1.2.3.4</Gateway>'), 'DHCPConfig/Gateway', /unknown element/);
  configError(t, cfg(NS + '<Netmask>255.255.256.0</Netmask>' + IB), 'DHCPConfig/Netmask', /invalid IPv4 address "255.255.256.0"/);
  configError(t, cfg(NS + '<Netmask>255.0.255.0</Netmask>' + IB), 'DHCPConfig/Netmask', /not contiguous/);
  configError(t, cfg(NS + '<Netmask>255.255.255.254</Netmask>' + IB), 'DHCPConfig/Netmask', /\/31 leaves no room/);
  configError(t, cfg(NS + '<Netmask>0.0.0.0</Netmask>' + IB), 'DHCPConfig/Netmask', /\/0/);
  configError(t, cfg(NS + NM + '<IPBase>192.168.10</IPBase>'), 'DHCPConfig/IPBase', /invalid IPv4 address/);
  configError(t, cfg(NS + NM + '<IPBase>192.168.10.5</IPBase>'), 'DHCPConfig/IPBase', /not aligned to Netmask 255.255.255.0 \(network is 192.168.10.0\)/);
  configError(t, cfg(NS + NM + IB + '<LeaseTime>0</LeaseTime>'), 'DHCPConfig/LeaseTime', /must be positive/);
  configError(t, cfg(NS + NM + IB + '<LeaseTime>-5</LeaseTime>'), 'DHCPConfig/LeaseTime', /must be positive/);
  configError(t, cfg(NS + NM + IB + '<LeaseTime>1h</LeaseTime>'), 'DHCPConfig/LeaseTime', /whole number/);
  configError(t, cfg(NS + NM + IB + '<LeaseTime>99999999</LeaseTime>'), 'DHCPConfig/LeaseTime', /exceeds/);
  const R = (inner: string) => `<ReservedIPs><ReservedIP>${inner}</ReservedIP></ReservedIPs>`;
  configError(t, cfg(NS + NM + IB + R('<Mask>255.255.255.0</Mask>')), 'DHCPConfig/ReservedIPs/ReservedIP[1]/IPBase', /missing/);
  configError(t, cfg(NS + NM + IB + R('<IPBase>192.168.10.0</IPBase>')), 'DHCPConfig/ReservedIPs/ReservedIP[1]/Mask', /missing/);
  configError(t, cfg(NS + NM + IB + R('<IPBase>192.168.10.0</IPBase><Mask>255.255.0.255</Mask>')), 'DHCPConfig/ReservedIPs/ReservedIP[1]/Mask', /not contiguous/);
  configError(t, cfg(NS + NM + IB + R('<IPBase>192.168.10.3</IPBase><Mask>255.255.255.252</Mask>')), 'DHCPConfig/ReservedIPs/ReservedIP[1]/IPBase', /not aligned to Mask/);
  configError(t, cfg(NS + NM + IB + '<ReservedIPs><Foo/></ReservedIPs>'), 'DHCPConfig/ReservedIPs/Foo', /unknown element/);

  // The 1 KB DHT limit applies when serialising.
  const big: DhcpConfig = { namespace: 'ns', netmask: ip('255.255.0.0'), ipBase: ip('10.1.0.0'), leaseTime: 60,
    reserved: Array.from({ length: 20 }, (_, i) => ({ base: ip(`10.1.${i}.0`), mask: ip('255.255.255.0') })) };
  t.throws(() => serializeDhcpConfig(big), { name: 'ConfigError', message: new RegExp(`over the ${DHCP_CONFIG_MAX_BYTES}-byte DHT value limit`) });
  t.throws(() => serializeDhcpConfig({ ...big, reserved: [], namespace: ' x' }), { name: 'ConfigError', message: /whitespace/ });
  t.end();
});

t.test('DhcpRange', (t) => {
  const r = DhcpRange.fromConfig(parseDhcpConfig(SAMPLE));
  t.equal(ipToString(r.serverIp), '192.168.10.1');
  t.equal(ipToString(r.broadcast), '192.168.10.255');
  t.equal(r.size, 256);
  t.equal(String(r), '192.168.10.0/24');
  t.notOk(r.isAssignable(ip('192.168.10.0')), 'network');
  t.notOk(r.isAssignable(ip('192.168.10.1')), 'server');
  t.notOk(r.isAssignable(ip('192.168.10.15')), 'reserved /28');
  t.ok(r.isAssignable(ip('192.168.10.16')), 'just past the reserved block');
  t.ok(r.isAssignable(ip('192.168.10.254')));
  t.notOk(r.isAssignable(ip('192.168.10.255')), 'broadcast');
  t.notOk(r.isAssignable(ip('192.168.11.20')), 'outside');
  t.notOk(r.isAssignable(-1), 'not a u32');
  t.notOk(r.isAssignable(1.5));
  t.equal(ipToString(r.firstFree()!), '192.168.10.16');
  t.equal(ipToString(r.firstFree((x) => x === ip('192.168.10.16'))!), '192.168.10.17');
  t.equal(r.firstFree(() => true), undefined);

  const rnd = seededRandom(42);
  for (let i = 0; i < 200; i++) {
    const x = r.randomAssignable(rnd);
    if (x === undefined || !r.isAssignable(x)) { t.fail(`bad draw ${x}`); break; }
  }
  t.pass('200 random draws are all assignable');
  let calls = 0;
  const counting = { ...rnd, int: (m: number) => { calls++; return rnd.int(m); } };
  t.equal(r.randomAssignable(counting, undefined, () => true), undefined, 'gives up when everything is taken');
  t.equal(calls, 100, 'after 100 draws');

  // A /30 has exactly one client address (base+2); reserving it leaves none.
  const tiny = new DhcpRange({ ipBase: ip('10.0.0.4'), netmask: ip('255.255.255.252') });
  t.equal(ipToString(tiny.serverIp), '10.0.0.5');
  t.equal(ipToString(tiny.firstFree()!), '10.0.0.6');
  t.equal(tiny.randomAssignable(seededRandom(1), 1000), ip('10.0.0.6'));
  const none = new DhcpRange({ ipBase: ip('10.0.0.4'), netmask: ip('255.255.255.252'), reserved: [{ base: ip('10.0.0.6'), mask: 0xffffffff }] });
  t.equal(none.randomAssignable(seededRandom(1)), undefined);
  t.throws(() => new DhcpRange({ ipBase: 0, netmask: ip('255.0.255.0') }), /not contiguous/);
  t.end();
});

// ---------------------------------------------------------------------------------------
// Server

const RANGE = new DhcpRange({ ipBase: ip('10.250.0.0'), netmask: ip('255.255.0.0') });

function server(lease: DhcpServerOptions['lease'], extra: Partial<DhcpServerOptions> = {}): DhcpServer {
  return new DhcpServer({ range: RANGE, serverMac: SERVER_MAC, mtu: 1200, leaseTime: 3600, lease, ...extra });
}

/** A lease table standing in for the DHT: first come, first served per IP. */
function fakeDht(random = seededRandom(7)) {
  const owner = new Map<number, string>();
  const calls: Array<{ mac: string; requested: number | undefined; hostname: string | undefined }> = [];
  const lease = async (mac: Uint8Array, requested: number | undefined, hostname?: string): Promise<number> => {
    const m = hex(mac);
    calls.push({ mac: m, requested, hostname });
    await new Promise((r) => setTimeout(r, 5));
    const tryIp = (x: number) => { const o = owner.get(x); if (o === undefined || o === m) { owner.set(x, m); return true; } return false; };
    if (requested !== undefined && tryIp(requested)) return requested;
    for (const [x, o] of owner) if (o === m && requested === undefined) return x;
    const r = RANGE.randomAssignable(random, 100, (x) => owner.has(x));
    if (r === undefined || !tryIp(r)) throw new Error('no free address');
    return r;
  };
  return { owner, calls, lease };
}

t.test('DISCOVER -> OFFER -> REQUEST -> ACK', async (t) => {
  const dht = fakeDht();
  const lines: string[] = [];
  const s = server(dht.lease, { log: createLogger('debug', '', (l) => lines.push(l)), dns: [RANGE.serverIp] });

  const offer = replyOf(await s.handle(clientFrame(DhcpType.Discover, { hostname: 'alice', flags: 0 })));
  t.equal(offer.msg.messageType, DhcpType.Offer);
  t.equal(offer.msg.op, BOOTREPLY);
  t.equal(offer.msg.xid, 0x1234);
  t.same(offer.msg.chaddr, CLIENT_MAC);
  const offered = offer.msg.yiaddr;
  t.ok(RANGE.isAssignable(offered), `offered ${ipToString(offered)}`);
  t.same(dht.calls[0], { mac: hex(CLIENT_MAC), requested: undefined, hostname: 'alice' });
  // Addressing: serverIp:67 -> 255.255.255.255:68, from the fake MAC to broadcast (ciaddr is 0).
  t.equal(ipToString(offer.udp.srcIp), '10.250.0.1');
  t.equal(offer.udp.dstIp, 0xffffffff);
  t.equal(offer.udp.srcPort, 67);
  t.equal(offer.udp.dstPort, 68);
  t.same(srcMac(offer.frame), SERVER_MAC);
  t.same(dstMac(offer.frame), BROADCAST_MAC);
  t.equal(offer.msg.serverId, RANGE.serverIp);
  t.equal(hex(offer.msg.options.get(Opt.SubnetMask)!), 'ffff0000');
  t.equal(hex(offer.msg.options.get(Opt.Mtu)!), '04b0');
  t.equal(hex(offer.msg.options.get(Opt.LeaseTime)!), '00000e10');
  t.equal(hex(offer.msg.options.get(Opt.Dns)!), '0afa0001');
  t.notOk(offer.msg.options.has(Opt.Router));

  const ack = replyOf(await s.handle(clientFrame(DhcpType.Request, { xid: 0x5678, requested: offered, serverId: RANGE.serverIp, hostname: 'alice' })));
  t.equal(ack.msg.messageType, DhcpType.Ack);
  t.equal(ack.msg.xid, 0x5678);
  t.equal(ack.msg.yiaddr, offered);
  t.equal(dht.calls[1]!.requested, offered);
  t.same(dstMac(ack.frame), BROADCAST_MAC);

  // Renewal (RENEWING): unicast from the configured client, ciaddr set, no option 50.
  const renew = replyOf(await s.handle(clientFrame(DhcpType.Request, { xid: 0x9abc, ciaddr: offered })));
  t.equal(renew.msg.messageType, DhcpType.Ack);
  t.equal(renew.msg.yiaddr, offered);
  t.equal(renew.msg.ciaddr, offered);
  t.equal(renew.udp.dstIp, offered, 'unicast to ciaddr');
  t.same(dstMac(renew.frame), CLIENT_MAC, 'to the client MAC');
  // Unless the client asks for broadcast.
  const bc = replyOf(await s.handle(clientFrame(DhcpType.Request, { xid: 0x9abd, ciaddr: offered, flags: FLAG_BROADCAST })));
  t.equal(bc.udp.dstIp, 0xffffffff);
  t.ok(lines.some((l) => /ACK 10\.250\.\d+\.\d+ to 02:11:22:33:44:55 \(alice\)/.test(l)), 'ACK logged');
  t.end();
});

t.test('NAKs and ignored messages', async (t) => {
  const dht = fakeDht();
  const s = server(dht.lease);
  const other = parseMac('02:00:00:00:00:99');
  dht.owner.set(ip('10.250.3.3'), hex(other));

  // REQUEST for an address another node holds: the lease gives something else -> NAK.
  const n1 = replyOf(await s.handle(clientFrame(DhcpType.Request, { requested: ip('10.250.3.3') })));
  t.equal(n1.msg.messageType, DhcpType.Nak);
  t.equal(n1.msg.yiaddr, 0);
  t.same(dstMac(n1.frame), BROADCAST_MAC, 'NAKs are broadcast');
  t.match(Buffer.from(n1.msg.options.get(Opt.Message)!).toString(), /10\.250\.3\.3 is unavailable/);

  // The lease callback rejecting -> NAK too.
  const rej = server(async () => { throw new Error('ENTRY_ALREADY_EXISTS'); });
  const n2 = replyOf(await rej.handle(clientFrame(DhcpType.Request, { requested: ip('10.250.3.4') })));
  t.equal(n2.msg.messageType, DhcpType.Nak);
  t.match(Buffer.from(n2.msg.options.get(Opt.Message)!).toString(), /ENTRY_ALREADY_EXISTS/);
  // …and a DISCOVER that cannot get an address is not answered.
  t.equal(await rej.handle(clientFrame(DhcpType.Discover)), null);

  // Out of range (a client coming from another network) or reserved: NAK without asking the DHT.
  const before = dht.calls.length;
  for (const bad of ['192.168.1.5', '10.250.0.1', '10.250.255.255']) {
    const n = replyOf(await s.handle(clientFrame(DhcpType.Request, { requested: ip(bad) })));
    t.equal(n.msg.messageType, DhcpType.Nak, `NAK for ${bad}`);
  }
  t.equal(replyOf(await s.handle(clientFrame(DhcpType.Request))).msg.messageType, DhcpType.Nak, 'NAK with no address at all');
  t.equal(dht.calls.length, before, 'no lease attempted');

  // A REQUEST naming another server is the client declining our offer.
  t.equal(await s.handle(clientFrame(DhcpType.Request, { requested: ip('10.250.3.9'), serverId: ip('10.250.0.2') })), null);
  // RELEASE, DECLINE, INFORM and plain BOOTP are ignored.
  for (const type of [DhcpType.Release, DhcpType.Decline, DhcpType.Inform]) t.equal(await s.handle(clientFrame(type)), null);
  t.equal(await s.handle(buildUdpFrame({ srcMac: CLIENT_MAC, dstMac: BROADCAST_MAC, srcIp: 0, dstIp: 0xffffffff, srcPort: 68, dstPort: 67,
    payload: encodeDhcp({ op: BOOTREQUEST, xid: 1, chaddr: CLIENT_MAC, options: [] }) })), null, 'BOOTP');
  // Not for us, or not a request.
  t.equal(await s.handle(buildUdpFrame({ srcMac: CLIENT_MAC, dstMac: BROADCAST_MAC, srcIp: 0, dstIp: 0xffffffff, srcPort: 68, dstPort: 1067,
    payload: new Uint8Array(300) })), null, 'wrong port');
  const asReply = clientFrame(DhcpType.Discover); asReply[42] = BOOTREPLY;
  t.equal(await s.handle(asReply), null, 'BOOTREPLY (and its now-bad checksum)');
  t.equal(await s.handle(new Uint8Array(10)), null, 'garbage');
  // A lease callback that returns nonsense does not produce an OFFER.
  const silly = server(async () => ip('10.250.0.0'));
  t.equal(await silly.handle(clientFrame(DhcpType.Discover)), null);
  t.end();
});

t.test('one transaction per MAC', async (t) => {
  let active = 0, maxActive = 0, calls = 0;
  const gates: Array<() => void> = [];
  const lease = async (_mac: Uint8Array, requested: number | undefined): Promise<number> => {
    calls++; active++; maxActive = Math.max(maxActive, active);
    await new Promise<void>((r) => gates.push(r));
    active--;
    return requested ?? ip('10.250.7.7');
  };
  const s = server(lease);
  const tick = () => new Promise((r) => setImmediate(r));

  const d1 = s.handle(clientFrame(DhcpType.Discover));
  const d1again = s.handle(clientFrame(DhcpType.Discover)); // retransmission, same xid
  const r1 = s.handle(clientFrame(DhcpType.Request, { xid: 0x77, requested: ip('10.250.7.7') }));
  const r1extra = s.handle(clientFrame(DhcpType.Request, { xid: 0x78, requested: ip('10.250.7.7') })); // queue full
  const other = s.handle(clientFrame(DhcpType.Discover, { mac: parseMac('02:00:00:00:00:01') }));
  await tick();
  t.equal(calls, 2, 'one lease for our MAC (plus one for the other MAC) in flight');
  t.equal(await r1extra, null, 'a third distinct transaction for a busy MAC is dropped');
  gates.shift()!();
  const o1 = replyOf(await d1);
  t.equal(o1.msg.messageType, DhcpType.Offer);
  t.equal(await d1again, null, 'the retransmission is absorbed: the first reply answers it');
  await tick();
  t.equal(calls, 3, 'the REQUEST ran only after the DISCOVER finished');
  gates.shift()!(); gates.shift()!();
  t.equal(replyOf(await other).msg.messageType, DhcpType.Offer);
  t.equal(replyOf(await r1).msg.messageType, DhcpType.Ack);
  t.equal(maxActive, 2, 'never two leases at once for one MAC');
  t.end();
});

t.test('decoders and the server only ever throw WireError / resolve', async (t) => {
  const check = (fn: () => unknown): void => {
    try { fn(); } catch (e) { if (!(e instanceof WireError)) throw e; }
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (b) => { check(() => decodeDhcp(b)); }), { numRuns: 2000 });
  // Random option areas behind a valid fixed part and cookie.
  fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), fc.integer({ min: 0, max: 3 }), (opts, ov) => {
    const b = new Uint8Array(240 + opts.length + 3);
    b[0] = 1; b[2] = 6; new DataView(b.buffer).setUint32(236, DHCP_MAGIC);
    b.set([52, 1, ov], 240); b.set(opts, 243);
    b.fill(0x35, 44, 236); // sname/file full of option 53 headers
    check(() => decodeDhcp(b));
  }), { numRuns: 2000 });

  const r = prng(0xd0c);
  const s = server(async (_m, req) => req ?? ip('10.250.1.2'));
  const pool = [
    clientFrame(DhcpType.Discover, { hostname: 'h' }),
    clientFrame(DhcpType.Request, { requested: ip('10.250.1.2'), serverId: RANGE.serverIp }),
    clientFrame(DhcpType.Request, { ciaddr: ip('10.250.1.2') }),
  ];
  const dhcpPool = pool.map((f) => decodeUdp(f).payload.slice());
  let replies = 0;
  for (let i = 0; i < 5000; i++) {
    check(() => decodeDhcp(mutate(r, dhcpPool[r.int(dhcpPool.length)]!, null)));
    // Frames: mutate the DHCP payload and re-wrap it with valid checksums, so it reaches the server logic.
    const payload = mutate(r, dhcpPool[r.int(dhcpPool.length)]!, null);
    const f = buildUdpFrame({ srcMac: CLIENT_MAC, dstMac: BROADCAST_MAC, srcIp: 0, dstIp: 0xffffffff, srcPort: 68, dstPort: 67, payload });
    const out = await s.handle(i % 4 === 0 ? mutate(r, f, null) : f);
    if (out !== null) { replies++; decodeDhcp(decodeUdp(out).payload); }
  }
  t.ok(replies > 0, `the server still answered some mutants (${replies}), each a well-formed reply`);
  t.end();
});
