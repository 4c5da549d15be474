// IpopConfig/MTU 0: the TAP's MTU derived from the underlay interface (DevicesToBind, else the
// route to the first RemoteTA, else the default route), read from fake /proc and /sys files.
import t from 'tap';
import { DEFAULT_VPN_MTU, mtuOver, VPN_OVERHEAD, vpnMtu } from '../src/vpn/mtu.js';
import { TransportAddress } from '../src/transport/ta.js';
import { interfaceMtu, routeDevice4, routeDevice6, underlayInterface, type ReadSys } from '../src/vpn/underlay.js';

// Copied from a host: a default route via eth0 and 192.0.2.0/24 on it.
const ROUTE_HEAD = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n';
const route = (...rows: string[]) => ROUTE_HEAD + rows.map((r) => `${r}\n`).join('');
const HOST_ROUTES = route(
  'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0',
  'eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
  // An outer VPN's TAP: 10.99.0.0/24, and a more specific, higher-metric 10.99.0.128/25 on tapb.
  'tapipop\t0000630A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
  'tapb\t8000630A\t00000000\t0001\t0\t0\t100\t80FFFFFF\t0\t0\t0',
  'tapc\t8000630A\t00000000\t0001\t0\t0\t50\t80FFFFFF\t0\t0\t0',
  // Down (flags 0): never chosen.
  'down0\t0000000A\t00000000\t0000\t0\t0\t0\t000000FF\t0\t0\t0',
);
const IPV6_ROUTES = [
  'fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0',
  'fd870000000000000000000000000000 30 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001  tapipop',
  '00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0',
  '00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo',
  'fd000000000000000000000000000002 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000004 00000000 80200001     eth0',
].join('\n') + '\n';

const sys = (files: Record<string, string>, mtus: Record<string, number> = {}): ReadSys => (path) => {
  if (files[path] !== undefined) return files[path];
  const m = /^\/sys\/class\/net\/([^/]+)\/mtu$/.exec(path);
  return m && mtus[m[1]!] !== undefined ? `${mtus[m[1]!]}\n` : undefined;
};
const MTUS = { eth0: 1500, tapipop: 1336, tapb: 1200, tapc: 1400, lo: 65536, jumbo: 9000, small: 1280 };
const host = sys({ '/proc/net/route': HOST_ROUTES, '/proc/net/ipv6_route': IPV6_ROUTES }, MTUS);
const tas = (...keys: string[]) => keys.map((k) => TransportAddress.parse(k));

t.test('the TAP MTU formula: underlay minus the overlay headers, down to a multiple of 8, underlay at most 1500', async (t) => {
  t.equal(VPN_OVERHEAD, 157);
  t.equal(mtuOver(1500), 1336);
  t.equal(mtuOver(1500), DEFAULT_VPN_MTU, 'the old fixed default is the 1500-byte case');
  t.equal(mtuOver(1336), 1176, 'an inner VPN over an outer TAP of 1336: 1336 - 157 = 1179, down to 1176');
  t.equal(mtuOver(1176), 1016, 'and one more level down');
  t.equal(mtuOver(1280), 1120);
  t.equal(mtuOver(9000), 1336, 'jumbo frames gain nothing: the overlay sends datagrams for 1500-byte paths');
  t.equal(mtuOver(65536), 1336, 'loopback likewise');
  t.equal(vpnMtu(1400, { mtu: 1336 }), 1400, 'a configured MTU wins');
  t.equal(vpnMtu(0, { mtu: 1336 }), 1176);
  t.equal(vpnMtu(0), 1336, 'unknown underlay: 1500 assumed');
});

t.test('routes: longest prefix, then lowest metric, only routes that are up', async (t) => {
  t.equal(routeDevice4('192.0.2.7', host), 'eth0');
  t.equal(routeDevice4('198.51.100.1', host), 'eth0', 'default route');
  t.equal(routeDevice4('10.99.0.3', host), 'tapipop');
  t.equal(routeDevice4('10.99.0.200', host), 'tapc', '/25 beats /24; metric 50 beats 100');
  t.equal(routeDevice4('10.0.0.1', host), 'eth0', 'a route that is down is skipped');
  t.equal(routeDevice4('10.0.0.1', sys({ '/proc/net/route': route() })), undefined, 'no routes');
  t.equal(routeDevice4('10.0.0.1', sys({})), undefined, 'no /proc');
  t.equal(routeDevice4('10.0.0.1', sys({ '/proc/net/route': ROUTE_HEAD + 'garbage line\n' })), undefined, 'malformed lines are skipped');
  t.equal(routeDevice6('fd00::5', host), 'eth0');
  t.equal(routeDevice6('fd87::1:2', host), 'tapipop', '/48 beats /0 and /64 does not match');
  t.equal(routeDevice6('2001:db8::1', host), 'eth0', 'default route; the reject route on lo is skipped');
  t.equal(routeDevice6('fd00::2', host), 'eth0', '/128');
});

t.test('underlayInterface: DevicesToBind, else the route to the first RemoteTA, else the default route', async (t) => {
  t.same(underlayInterface({ devicesToBind: ['eth0', 'small', 'tapb'], remoteTAs: [] }, host), { name: 'tapb', mtu: 1200, via: 'DevicesToBind' }, 'the smallest MTU among them');
  t.same(underlayInterface({ devicesToBind: ['gone0', 'tapipop'], remoteTAs: tas('brunet.udp://192.0.2.1:5000') }, host),
    { name: 'tapipop', mtu: 1336, via: 'DevicesToBind' }, 'devices that do not exist are left out; RemoteTAs do not matter');
  t.same(underlayInterface({ devicesToBind: ['gone0'], remoteTAs: [] }, host), { reason: 'none of DevicesToBind (gone0) exists' });
  // A nested instance: its bootstrap is reached over the outer VPN's TAP.
  const inner = underlayInterface({ devicesToBind: [], remoteTAs: tas('brunet.udp://10.99.0.1:15000', 'brunet.udp://192.0.2.9:15000') }, host);
  t.same(inner, { name: 'tapipop', mtu: 1336, via: 'the route to 10.99.0.1' });
  t.equal(vpnMtu(0, inner.name === undefined ? undefined : inner), 1176, 'the inner TAP gets 1176');
  t.same(underlayInterface({ devicesToBind: [], remoteTAs: tas('brunet.udp://[fd87::9]:15000') }, host), { name: 'tapipop', mtu: 1336, via: 'the route to fd87::9' });
  t.same(underlayInterface({ devicesToBind: [], remoteTAs: tas('brunet.tcp://boot.example:5000', 'brunet.udp://192.0.2.1:5000') }, host),
    { name: 'eth0', mtu: 1500, via: 'the route to 192.0.2.1' }, 'the first RemoteTA with an IP address');
  t.same(underlayInterface({ devicesToBind: [], remoteTAs: [] }, host), { name: 'eth0', mtu: 1500, via: 'the default route' }, 'a bootstrap: the default route');
  t.same(underlayInterface({ devicesToBind: [], remoteTAs: [] }, sys({ '/proc/net/route': route() })), { reason: 'no interface found for the default route' });
  t.same(underlayInterface({ devicesToBind: [], remoteTAs: tas('brunet.udp://192.0.2.1:5000') }, sys({ '/proc/net/route': HOST_ROUTES })),
    { reason: 'cannot read the MTU of eth0 (the route to 192.0.2.1)' });
  t.equal(interfaceMtu('eth0', sys({ '/sys/class/net/eth0/mtu': 'bogus\n' })), undefined);
});

t.test('underlayInterface on this host reads the real /proc and /sys', async (t) => {
  const lo = underlayInterface({ devicesToBind: [], remoteTAs: tas('brunet.udp://127.0.0.1:5000') });
  t.same(lo, { name: 'lo', mtu: interfaceMtu('lo'), via: 'the route to 127.0.0.1' }, 'loopback (in the local table, not in /proc/net/route)');
  t.equal(vpnMtu(0, lo.name === undefined ? undefined : lo), 1336);
  t.equal(routeDevice4('127.3.4.5', sys({})), 'lo');
  t.same(underlayInterface({ devicesToBind: ['lo'], remoteTAs: [] }), { name: 'lo', mtu: interfaceMtu('lo'), via: 'DevicesToBind' });
});
