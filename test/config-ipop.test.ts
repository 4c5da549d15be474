// The IPOP section: defaults, every validation error, and Brunet's separate ipop.config.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { loadIpopConfig } from '../src/config/ipop-config.js';
import { parseNodeConfig } from '../src/config/node-config.js';
import { ROOT, tempDir } from './helpers/procs.js';

const node = (ipop: string) => `<NodeConfig><BrunetNamespace>r</BrunetNamespace><IpopConfig>${ipop}</IpopConfig></NodeConfig>`;
const parse = (ipop: string) => parseNodeConfig(node(ipop)).ipop!;

t.test('defaults and a full section', async (t) => {
  const d = parse('<IpopNamespace>ns</IpopNamespace>');
  t.same(d, { namespace: 'ns', mode: 'router', device: 'tapipop', macAgeSeconds: 300, addressDevice: 'tapipop', leaseTime: 3600, mtu: 0, onDemand: { enabled: true, threshold: 128, idleTimeout: 240 }, getStatePort: 5800, multicast: false, offload: true, fastPath: true, nativeFlows: false, ipv6Prefix: 'auto', networkIgnoreList: [], ignored: [] });
  t.notOk(d.address, 'no AddressData: DHCP');
  const f = parse(`<IpopNamespace>ns</IpopNamespace><VirtualNetworkDevice>tap1</VirtualNetworkDevice>
    <AddressData><IPAddress>10.1.2.3</IPAddress><Netmask>255.255.0.0</Netmask><Hostname>h</Hostname></AddressData>
    <LeaseTime>600</LeaseTime><MTU>1280</MTU><OnDemand><Enabled>false</Enabled><Threshold>10</Threshold><IdleTimeout>30</IdleTimeout></OnDemand>
    <GetStatePort>0</GetStatePort><EnableMulticast>true</EnableMulticast><DHCPConfigFile>d.xml</DHCPConfigFile><Offload>false</Offload>`);
  t.same(f.address, { ip: '10.1.2.3', prefix: 16 });
  t.equal(f.hostname, 'h');
  t.same([f.device, f.leaseTime, f.mtu, f.getStatePort, f.multicast, f.dhcpConfigFile, f.offload], ['tap1', 600, 1280, 0, true, 'd.xml', false]);
  t.same(f.onDemand, { enabled: false, threshold: 10, idleTimeout: 30 });
  t.equal(parse('<IpopNamespace>ns</IpopNamespace><FastPath>false</FastPath>').fastPath, false, 'FastPath false: the reference data path');
  t.equal(parse('<IpopNamespace>ns</IpopNamespace><NativeFlows>true</NativeFlows>').nativeFlows, true, 'NativeFlows true: the native fast path');
  t.equal(parse('<IpopNamespace>ns</IpopNamespace><AddressData><IPAddress>10.0.0.1</IPAddress><Netmask>/24</Netmask></AddressData>').address!.prefix, 24);
  t.notOk(parseNodeConfig('<NodeConfig><BrunetNamespace>r</BrunetNamespace></NodeConfig>').ipop, 'absent for plain overlay nodes');
  t.same(parse('<IpopNamespace>ns</IpopNamespace><NetworkIgnoreList><Device>lxcbr0</Device><Device>docker0</Device></NetworkIgnoreList>').networkIgnoreList, ['lxcbr0', 'docker0']);
  t.throws(() => parse('<IpopNamespace>ns</IpopNamespace><NetworkIgnoreList><Device>a b</Device></NetworkIgnoreList>'), /NetworkIgnoreList\/Device\[1\]: "a b" is not a valid interface name/);
});

t.test('every field is validated with a message naming it', async (t) => {
  const bad: Array<[string, RegExp]> = [
    ['', /IpopConfig\/IpopNamespace: missing/],
    ['<IpopNamespace>a:b</IpopNamespace>', /IpopNamespace: must not contain/],
    ['<IpopNamespace>n</IpopNamespace><VirtualNetworkDevice>this-name-is-too-long</VirtualNetworkDevice>', /VirtualNetworkDevice: .* not a valid interface name/],
    ['<IpopNamespace>n</IpopNamespace><AddressData><IPAddress>10.0.0.300</IPAddress><Netmask>24</Netmask></AddressData>', /AddressData\/IPAddress: not an IPv4 address/],
    ['<IpopNamespace>n</IpopNamespace><AddressData><IPAddress>10.0.0.3</IPAddress></AddressData>', /AddressData\/Netmask: missing/],
    ['<IpopNamespace>n</IpopNamespace><AddressData><IPAddress>10.0.0.3</IPAddress><Netmask>255.0.255.0</Netmask></AddressData>', /not a contiguous netmask/],
    ['<IpopNamespace>n</IpopNamespace><AddressData><IPAddress>10.0.0.3</IPAddress><Netmask>31</Netmask></AddressData>', /prefix length 31 out of range/],
    ['<IpopNamespace>n</IpopNamespace><AddressData><Netmask>24</Netmask></AddressData>', /Netmask: given without an IPAddress/],
    ['<IpopNamespace>n</IpopNamespace><LeaseTime>10</LeaseTime>', /LeaseTime: 10 out of range/],
    ['<IpopNamespace>n</IpopNamespace><MTU>abc</MTU>', /MTU: expected a whole number/],
    ['<IpopNamespace>n</IpopNamespace><OnDemand><Enabled>maybe</Enabled></OnDemand>', /OnDemand\/Enabled: expected true or false/],
    ['<IpopNamespace>n</IpopNamespace><OnDemand><Treshold>5</Treshold></OnDemand>', /OnDemand\/Treshold: unknown element/],
    ['<IpopNamespace>n</IpopNamespace><GetStatePort>70000</GetStatePort>', /GetStatePort: port 70000 out of range/],
    ['<IpopNamespace>n</IpopNamespace><Offload>yes</Offload>', /IpopConfig\/Offload: expected true or false/],
    ['<IpopNamespace>n</IpopNamespace><FastPath>yes</FastPath>', /IpopConfig\/FastPath: expected true or false/],
    ['<IpopNamespace>n</IpopNamespace><NativeFlows>on</NativeFlows>', /IpopConfig\/NativeFlows: expected true or false/],
    ['<IpopNamespace>n</IpopNamespace><FastPath>false</FastPath><NativeFlows>true</NativeFlows>', /IpopConfig\/NativeFlows: NativeFlows needs FastPath true/],
    ['<IpopNamespace>n</IpopNamespace><Mode>switch</Mode><NativeFlows>true</NativeFlows>', /IpopConfig\/NativeFlows: NativeFlows is for router mode only/],
    ['<IpopNamespace>n</IpopNamespace><Colour>blue</Colour>', /IpopConfig\/Colour: unknown element/],
    ['<IpopNamespace>n</IpopNamespace><IpopNamespace>m</IpopNamespace>', /IpopNamespace: appears 2 times/],
  ];
  for (const [x, re] of bad) t.throws(() => parse(x), re, x || '(empty)');
});

t.test('a static address must be a host address of its subnet', async (t) => {
  const at = (ip: string, mask: string) => `<IpopNamespace>n</IpopNamespace><AddressData><IPAddress>${ip}</IPAddress><Netmask>${mask}</Netmask></AddressData>`;
  const refused: Array<[string, string, RegExp]> = [
    ['192.168.10.0', '24', /IpopConfig\/AddressData\/IPAddress: 192\.168\.10\.0 is the network address of its \/24, not a host address/],
    ['192.168.10.255', '255.255.255.0', /IPAddress: 192\.168\.10\.255 is the broadcast address of its \/24/],
    ['10.0.0.4', '30', /IPAddress: 10\.0\.0\.4 is the network address of its \/30/],
    ['10.0.0.7', '30', /IPAddress: 10\.0\.0\.7 is the broadcast address of its \/30/],
    ['10.255.255.255', '8', /broadcast address of its \/8/],
    ['224.0.0.5', '24', /IPAddress: 224\.0\.0\.5 is a multicast address \(224\.0\.0\.0\/4\)/],
    ['239.1.2.3', '16', /multicast/],
    ['127.0.0.2', '8', /IPAddress: 127\.0\.0\.2 is a loopback address/],
    ['127.1.2.3', '24', /loopback/],
    ['255.255.255.255', '24', /reserved or broadcast address \(240\.0\.0\.0\/4\)/],
    ['240.0.0.1', '24', /reserved/],
    ['0.0.0.1', '24', /in 0\.0\.0\.0\/8/],
  ];
  for (const [ip, mask, re] of refused) t.throws(() => parse(at(ip, mask)), re, `${ip}/${mask}`);
  for (const [ip, mask] of [['192.168.10.1', '24'], ['192.168.10.254', '24'], ['10.0.0.5', '30'], ['10.0.0.6', '30'], ['10.255.255.254', '8'], ['223.255.255.1', '24']]) {
    t.same(parse(at(ip, mask)).address?.ip, ip, `${ip}/${mask} accepted`);
  }
});

t.test('a TAP name the kernel refuses is refused at validation, naming the element', async (t) => {
  for (const name of ['.', '..', 'a/b', '../tap', 'sixteen-chars-xx', 'tap 0', 'tap:0']) {
    t.throws(() => parse(`<IpopNamespace>n</IpopNamespace><VirtualNetworkDevice>${name}</VirtualNetworkDevice>`),
      /^IpopConfig\/VirtualNetworkDevice: .* is not a valid interface name/, JSON.stringify(name));
  }
  t.throws(() => parse('<IpopNamespace>n</IpopNamespace><VirtualNetworkDevice>..</VirtualNetworkDevice>'), /the kernel refuses "\." and "\.\."/);
  for (const name of ['tap0', 'a', 'fifteen-chars-x', 'tap.1', 'my_tap-2']) t.equal(parse(`<IpopNamespace>n</IpopNamespace><VirtualNetworkDevice>${name}</VirtualNetworkDevice>`).device, name);
});

t.test("Brunet's ipop.config loads; features we lack are reported, not fatal", async (t) => {
  const dir = tempDir(t);
  const f = join(dir, 'ipop.config');
  writeFileSync(f, `<?xml version="1.0"?>
<IpopConfig xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <IpopNamespace>testns</IpopNamespace>
  <VirtualNetworkDevice>tapipop</VirtualNetworkDevice>
  <AddressData><Hostname>host1</Hostname><IPAddress>10.250.0.5</IPAddress><Netmask>255.255.0.0</Netmask><EthernetAddress>aa:bb:cc:dd:ee:ff</EthernetAddress></AddressData>
  <EnableMulticast>true</EnableMulticast>
  <EndToEndSecurity>false</EndToEndSecurity>
  <DHCPPort>67</DHCPPort>
  <AllowStaticAddresses>true</AllowStaticAddresses>
  <Dns><Type>StaticDns</Type></Dns>
</IpopConfig>`);
  const c = loadIpopConfig(f);
  t.equal(c.namespace, 'testns');
  t.same(c.address, { ip: '10.250.0.5', prefix: 16 });
  t.ok(c.multicast);
  t.same(c.ignored, ['AddressData/EthernetAddress', 'EndToEndSecurity', 'DHCPPort', 'AllowStaticAddresses', 'Dns']);
  writeFileSync(f, '<NodeConfig/>');
  t.throws(() => loadIpopConfig(f), /IpopConfig: root element must be one <IpopConfig> \(in /);
  t.throws(() => loadIpopConfig(join(dir, 'missing')), /cannot read .*: no such file/);
});

t.test('Mode, Bridge and MacAgeSeconds: switch mode and what it allows', async (t) => {
  const ns = '<IpopNamespace>n</IpopNamespace>';
  const r = parse(`${ns}<Mode>router</Mode>`);
  t.same([r.mode, r.bridge, r.macAgeSeconds], ['router', undefined, 300]);
  const s = parse(`${ns}<Mode>switch</Mode><Bridge>br-lan.1</Bridge><MacAgeSeconds>60</MacAgeSeconds>`);
  t.same([s.mode, s.bridge, s.macAgeSeconds], ['switch', 'br-lan.1', 60]);
  t.equal(s.address, undefined, 'switch mode without AddressData: no address');
  t.equal(s.addressDevice, undefined, 'and nothing to put one on, so nothing is leased');
  const empty = parse(`${ns}<Mode>switch</Mode><AddressData><IPAddress></IPAddress></AddressData>`);
  t.same([empty.address, empty.addressDevice], [undefined, undefined], 'an empty IPAddress in switch mode: no address either (not DHCP)');
  const routerDhcp = parse(`${ns}<AddressData><IPAddress></IPAddress></AddressData>`);
  t.same([routerDhcp.address, routerDhcp.addressDevice], [undefined, 'tapipop'], 'router mode: an empty IPAddress still means a leased address on the TAP');
  const addr = '<AddressData><IPAddress>10.8.0.5</IPAddress><Netmask>24</Netmask></AddressData>';
  const onBridge = parse(`${ns}<Mode>switch</Mode><Bridge>br0</Bridge>${addr}`);
  t.same([onBridge.address, onBridge.addressDevice], [{ ip: '10.8.0.5', prefix: 24 }, 'br0'], 'a static address in switch mode goes on the Bridge');
  const onTap = parse(`${ns}<Mode>switch</Mode><VirtualNetworkDevice>tapsw</VirtualNetworkDevice>${addr}`);
  t.same([onTap.address, onTap.addressDevice], [{ ip: '10.8.0.5', prefix: 24 }, 'tapsw'], '... or on the TAP without one');
  t.equal(parse(`${ns}<Mode>switch</Mode><Bridge></Bridge>`).bridge, undefined, 'an empty Bridge is none');
  t.equal(parse(`${ns}<MacAgeSeconds>10</MacAgeSeconds>`).macAgeSeconds, 10);
  t.equal(parse(`${ns}<MacAgeSeconds>86400</MacAgeSeconds>`).macAgeSeconds, 86400);

  const bad: Array<[string, RegExp]> = [
    [`${ns}<Mode>bridge</Mode>`, /^IpopConfig\/Mode: expected router or switch, got "bridge"$/],
    [`${ns}<Mode></Mode>`, /^IpopConfig\/Mode: expected router or switch, got ""$/],
    [`${ns}<Mode>Switch</Mode>`, /IpopConfig\/Mode: expected router or switch/],
    [`${ns}<Bridge>br0</Bridge>`, /^IpopConfig\/Bridge: Bridge needs Mode switch/],
    [`${ns}<Mode>router</Mode><Bridge>br0</Bridge>`, /^IpopConfig\/Bridge: Bridge needs Mode switch/],
    [`${ns}<Mode>switch</Mode><Bridge>sixteen-chars-xx</Bridge>`, /^IpopConfig\/Bridge: "sixteen-chars-xx" is not a valid interface name \(1-15/],
    [`${ns}<Mode>switch</Mode><Bridge>br 0</Bridge>`, /IpopConfig\/Bridge: "br 0" is not a valid interface name/],
    [`${ns}<Mode>switch</Mode><Bridge>..</Bridge>`, /IpopConfig\/Bridge: .*the kernel refuses/],
    [`${ns}<Mode>switch</Mode><Bridge>tapipop</Bridge>`, /IpopConfig\/Bridge: tapipop is the TAP itself/],
    [`${ns}<MacAgeSeconds>9</MacAgeSeconds>`, /IpopConfig\/MacAgeSeconds: 9 out of range 10\.\.86400/],
    [`${ns}<MacAgeSeconds>86401</MacAgeSeconds>`, /MacAgeSeconds: 86401 out of range/],
    [`${ns}<MacAgeSeconds>5m</MacAgeSeconds>`, /MacAgeSeconds: expected a whole number/],
    [`${ns}<Mode>switch</Mode><Mode>router</Mode>`, /Mode: appears 2 times/],
  ];
  for (const [x, re] of bad) t.throws(() => parse(x), re, x);
});

t.test('MTU 0 is the default and means derived; else 576..9000', async (t) => {
  const ns = '<IpopNamespace>n</IpopNamespace>';
  t.equal(parse(ns).mtu, 0);
  t.equal(parse(`${ns}<MTU>0</MTU>`).mtu, 0, 'written out: derived');
  t.equal(parse(`${ns}<MTU>576</MTU>`).mtu, 576);
  t.equal(parse(`${ns}<MTU>9000</MTU>`).mtu, 9000);
  t.throws(() => parse(`${ns}<MTU>575</MTU>`), /IpopConfig\/MTU: 575 out of range 576\.\.9000/);
  t.throws(() => parse(`${ns}<MTU>9001</MTU>`), /MTU: 9001 out of range/);
});

t.test('config/node.config.xml documents the new elements (and still loads)', async (t) => {
  const text = readFileSync(join(ROOT, 'config/node.config.xml'), 'utf8');
  for (const el of ['<Mode>router</Mode>', '<Bridge>br0</Bridge>', '<MacAgeSeconds>300</MacAgeSeconds>', '<MTU>0</MTU>']) t.ok(text.includes(el), el);
  // The commented examples, uncommented, are valid (with Mode switch for the Bridge).
  const section = /<IpopConfig>[\s\S]*<\/IpopConfig>/.exec(text)![0];
  const examples = [...section.matchAll(/\n\s*(<(Mode|Bridge|MacAgeSeconds|MTU)>[^<]*<\/\2>)/g)].map((m) => m[1]!.replace('router', 'switch'));
  t.equal(examples.length, 4);
  const c = parse(`<IpopNamespace>n</IpopNamespace>${examples.join('')}`);
  t.same([c.mode, c.bridge, c.macAgeSeconds, c.mtu], ['switch', 'br0', 300, 0]);
});
