// <SocialVpnConfig>: defaults, every validation error, paths relative to the config file,
// and the example config/socialvpn.config.xml.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadNodeConfig, parseNodeConfig } from '../src/config/node-config.js';
import { deviceNameFromHostname, parseSocialSubnet, parseSocialVpn } from '../src/config/socialvpn-config.js';
import { parser } from '../src/config/xml-helpers.js';
import { ROOT, tempDir } from './helpers/procs.js';

const node = (sv: string) => `<NodeConfig><BrunetNamespace>r</BrunetNamespace><SocialVpnConfig>${sv}</SocialVpnConfig></NodeConfig>`;
const parse = (sv: string) => parseNodeConfig(node(sv)).socialVpn!;
const section = (xml: string) => (parser.parse(xml) as { SocialVpnConfig: unknown[] }).SocialVpnConfig[0] as Record<string, unknown>;

t.test('defaults and a full section', async (t) => {
  const d = parseSocialVpn(section('<SocialVpnConfig><UserKeyFile>user.key</UserKeyFile></SocialVpnConfig>'), undefined, 'My_Laptop.example.org');
  t.same(d, { userKeyFile: 'user.key', deviceName: 'my-laptop', subnet: { network: '172.31.0.0', prefix: 16 }, device: 'svpn0', dnsEnabled: true, getStatePort: 5802, offload: true });
  const f = parse(`<UserKeyFile>/etc/svpn/alice.key</UserKeyFile><DeviceName>Phone-2</DeviceName><Subnet>10.20.0.0/16</Subnet>
    <VirtualNetworkDevice>svpn1</VirtualNetworkDevice><DnsEnabled>false</DnsEnabled><GetStatePort>5900</GetStatePort><Offload>false</Offload>`);
  t.same(f, { userKeyFile: '/etc/svpn/alice.key', deviceName: 'phone-2', subnet: { network: '10.20.0.0', prefix: 16 }, device: 'svpn1', dnsEnabled: false, getStatePort: 5900, offload: false });
  t.notOk(parseNodeConfig('<NodeConfig><BrunetNamespace>r</BrunetNamespace></NodeConfig>').socialVpn, 'absent unless configured');
  t.ok(parse('<UserKeyFile>k</UserKeyFile>').deviceName.length > 0, 'DeviceName defaults to this host');
});

t.test('host names become device names', async (t) => {
  const cases: Array<[string, string]> = [
    ['laptop', 'laptop'], ['LAPTOP.local', 'laptop'], ['my laptop', 'my-laptop'], ['__x__', 'x'], ['---', 'device'], ['', 'device'],
    ['a'.repeat(70), 'a'.repeat(63)], ['ünïcode-box', 'n-code-box'], [`${'a'.repeat(62)}_b`, 'a'.repeat(62)],
  ];
  for (const [host, want] of cases) t.equal(deviceNameFromHostname(host), want, JSON.stringify(host));
});

t.test('UserKeyFile is relative to the config file directory', async (t) => {
  const dir = tempDir(t);
  const cfg = join(dir, 'svpn.xml');
  writeFileSync(cfg, node('<UserKeyFile>keys/user.key</UserKeyFile>'));
  t.equal(loadNodeConfig(cfg).socialVpn!.userKeyFile, join(dir, 'keys/user.key'));
  writeFileSync(cfg, node('<UserKeyFile>/abs/user.key</UserKeyFile>'));
  t.equal(loadNodeConfig(cfg).socialVpn!.userKeyFile, '/abs/user.key');
});

t.test('every field is validated with a one-line message naming it', async (t) => {
  const K = '<UserKeyFile>k</UserKeyFile>';
  const bad: Array<[string, RegExp]> = [
    ['', /^SocialVpnConfig\/UserKeyFile: missing \(required/],
    ['<UserKeyFile></UserKeyFile>', /UserKeyFile: must not be empty/],
    [`${K}${K}`, /UserKeyFile: appears 2 times/],
    [`${K}<DeviceName>my laptop</DeviceName>`, /DeviceName: device name "my laptop" must be 1-63 characters/],
    [`${K}<DeviceName>-x</DeviceName>`, /DeviceName: .* must not start or end with -/],
    [`${K}<DeviceName>${'a'.repeat(64)}</DeviceName>`, /DeviceName: .* must be 1-63/],
    [`${K}<Subnet>172.31.0.0</Subnet>`, /Subnet: expected a subnet such as 172\.31\.0\.0\/16/],
    [`${K}<Subnet>172.31.0.300/16</Subnet>`, /Subnet: expected a subnet/],
    [`${K}<Subnet>10.0.0.0/7</Subnet>`, /Subnet: prefix \/7 out of range \/8\.\.\/24/],
    [`${K}<Subnet>10.0.0.0/25</Subnet>`, /prefix \/25 out of range/],
    [`${K}<Subnet>172.31.0.1/16</Subnet>`, /Subnet: 172\.31\.0\.1\/16 is not network-aligned \(did you mean 172\.31\.0\.0\/16\?\)/],
    [`${K}<Subnet>8.8.0.0/16</Subnet>`, /Subnet: 8\.8\.0\.0\/16 is not inside a private range/],
    [`${K}<Subnet>172.0.0.0/8</Subnet>`, /not inside a private range/],
    [`${K}<Subnet>172.32.0.0/16</Subnet>`, /not inside a private range/],
    [`${K}<Subnet>192.168.0.0/15</Subnet>`, /not inside a private range/],
    [`${K}<VirtualNetworkDevice>a-very-long-tap-name</VirtualNetworkDevice>`, /VirtualNetworkDevice: .* not a valid interface name/],
    [`${K}<DnsEnabled>sometimes</DnsEnabled>`, /DnsEnabled: expected true or false/],
    [`${K}<GroupSecret>x</GroupSecret>`, /SocialVpnConfig\/GroupSecret: unknown element/],
  ];
  for (const [x, re] of bad) {
    let err: unknown;
    try { parse(x); } catch (e) { err = e; }
    t.match(err, { name: 'ConfigError', message: re }, x || '(empty)');
    t.notOk(/\n/.test((err as Error | undefined)?.message ?? ''), 'one line');
  }
  for (const ok of ['10.0.0.0/8', '172.16.0.0/12', '172.31.255.0/24', '192.168.0.0/16', '192.168.77.0/24']) {
    t.same(parseSocialSubnet(ok, 'S'), { network: ok.split('/')[0], prefix: Number(ok.split('/')[1]) }, ok);
  }
});

t.test('the example config/socialvpn.config.xml parses', async (t) => {
  const file = join(ROOT, 'config/socialvpn.config.xml');
  const cfg = loadNodeConfig(file);
  t.same(cfg.socialVpn, { userKeyFile: join(ROOT, 'config/user.key'), deviceName: cfg.socialVpn!.deviceName, subnet: { network: '172.31.0.0', prefix: 16 }, device: 'svpn0', dnsEnabled: true, getStatePort: 5802, offload: true });
  t.ok(cfg.security.enabled, 'secure edges on');
  t.notOk(cfg.security.groupSecret, 'an open overlay: no group secret');
  t.notOk(cfg.ipop, 'no GroupVPN section');
  // The commented-out elements, uncommented, parse too (the documented values are valid).
  const text = readFileSync(file, 'utf8');
  const inner = [...text.matchAll(/<!--[^]*?-->/g)].map((m) => m[0]).filter((c) => /<(DeviceName|Subnet|VirtualNetworkDevice|DnsEnabled|GetStatePort|Offload)>/.test(c));
  t.equal(inner.length, 6);
  const opened = text.replace(/<!--[^]*?-->/g, (c) => /<(DeviceName|Subnet|VirtualNetworkDevice|DnsEnabled|GetStatePort|Offload)>[^<]*<\/\1>/.exec(c)?.[0] ?? c);
  const sv = parseNodeConfig(opened).socialVpn!;
  t.same([sv.deviceName, sv.subnet.network, sv.device, sv.dnsEnabled, sv.getStatePort, sv.offload], ['laptop', '172.31.0.0', 'svpn0', true, 5802, true]);
});
