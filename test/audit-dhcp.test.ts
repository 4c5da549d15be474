// Security audit, DHCP settings (`dhcp:<ns>`): whoever claims the key first owns it, so an
// overlay node outside the VPN can pre-empt a namespace's settings. A member configured with
// its own DHCPConfigFile must never take its range or netmask from such a claim.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_ON_DEMAND, type IpopConfig } from '../src/config/ipop-config.js';
import { createLogger } from '../src/util/log.js';
import { seededRandom } from '../src/util/random.js';
import { ipToString } from '../src/vpn/frames.js';
import { acquireLease } from '../src/vpn/lease.js';
import { readSettings, settingsKey } from '../src/vpn/mapping.js';
import { startSignedDhtRing } from './helpers/dht.js';
import { consistency, stopAll } from './helpers/ring.js';
import { VirtualLab } from './helpers/virtual.js';

const NS = 'auditvpn';
const settings = (base: string, mask: string) => `<DHCPConfig><Namespace>${NS}</Namespace><IPBase>${base}</IPBase><Netmask>${mask}</Netmask><LeaseTime>600</LeaseTime></DHCPConfig>`;

t.test('an outsider\'s dhcp:<ns> claim does not change the range of a member with its own settings', async (t) => {
  const lab = new VirtualLab({ seed: 5 });
  const { nodes, dhts } = await startSignedDhtRing(lab, 5, NS);
  t.teardown(async () => { await stopAll(nodes); await Promise.all(dhts.map((d) => d.close())); await lab.stop(); });
  t.ok(await lab.waitFor(() => consistency(nodes) === 1, 20_000), 'ring formed');
  // An overlay node that is no VPN member claims the settings key first, with a /1 "range".
  const outsider = dhts[4]!;
  await outsider.dht.create(settingsKey(NS), new TextEncoder().encode(settings('0.0.0.0', '128.0.0.0')), 3600);
  t.match(await readSettings(dhts[0]!.dht, NS), /128\.0\.0\.0/, 'the outsider holds dhcp:<ns>');

  const dir = t.testdir({});
  const file = join(dir, 'dhcp.config.xml');
  writeFileSync(file, settings('192.168.10.0', '255.255.255.0'));
  const cfg: IpopConfig = {
    namespace: NS, mode: 'router', device: 'tapaudit', macAgeSeconds: 300, leaseTime: 600, mtu: 0, onDemand: DEFAULT_ON_DEMAND, getStatePort: 0, multicast: false,
    offload: false, fastPath: true, nativeFlows: false, dhcpConfigFile: file, ipv6Prefix: '', networkIgnoreList: [], ignored: [],
  };
  const warnings: string[] = [];
  const log = createLogger('warn', '', (l) => warnings.push(l));
  const lease = await acquireLease({ dht: dhts[0]!.dht, registrations: dhts[0]!.registrations, self: nodes[0]!.address, cfg, random: seededRandom(3), log });
  t.equal(lease.prefix, 24, 'the netmask comes from the member\'s own file');
  t.match(ipToString(lease.ip), /^192\.168\.10\./, `the address too (${ipToString(lease.ip)})`);
  t.ok(warnings.some((w) => /DHT holds different ones; using .*dhcp\.config\.xml/.test(w)), 'and the conflict is logged');
});
