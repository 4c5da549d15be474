import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Address } from '../src/address/address.js';
import { seededRandom } from '../src/util/random.js';
import {
  ConfigError, NODE_CONFIG_ELEMENTS, loadNodeConfig, parseNodeConfig, writeNodeAddress,
} from '../src/config/node-config.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ADDR = Address.random(seededRandom(42));

function tempDir(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'brunet-config-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Asserts fn throws a ConfigError for `element` (and matching `message`, if given). */
function throwsConfig(t: Test, fn: () => unknown, element: string, message?: string | RegExp, label?: string): void {
  let err: unknown;
  try { fn(); } catch (e) { err = e; }
  t.ok(err instanceof ConfigError, `${label ?? element}: throws ConfigError (got ${String(err)})`);
  if (!(err instanceof ConfigError)) return;
  const what = label ?? element;
  t.equal(err.element, element, what);
  if (typeof message === 'string') t.equal(err.message, message, what);
  else if (message) t.match(err.message, message, what);
}

const wrap = (inner: string, ns = '<BrunetNamespace>ns</BrunetNamespace>'): string =>
  `<?xml version="1.0"?>\n<NodeConfig>\n  ${ns}\n  ${inner}\n</NodeConfig>\n`;

const FULL = `<?xml version="1.0" encoding="utf-8"?>
<NodeConfig xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <!-- comment -->
  <BrunetNamespace> testrealm </BrunetNamespace>
  <EdgeListeners>
    <EdgeListener type="udp"><port>4000</port></EdgeListener>
    <EdgeListener type="tcp" />
    <EdgeListener type="udp"><port>0</port></EdgeListener>
    <EdgeListener type="udp"><port>0</port></EdgeListener>
  </EdgeListeners>
  <RemoteTAs>
    <Transport>brunet.udp://10.0.0.1:4000</Transport>
    <Transport>brunet.tcp://[::1]:4001</Transport>
  </RemoteTAs>
  <XmlRpcManager><Enabled>FALSE</Enabled><Port>10001</Port></XmlRpcManager>
  <NodeAddress>${ADDR.key.toLowerCase()}</NodeAddress>
  <DevicesToBind><Device>eth0</Device><Device>wlan0</Device></DevicesToBind>
</NodeConfig>`;

t.test('a full valid config', async (t) => {
  const c = parseNodeConfig(FULL, 'x.xml');
  t.equal(c.source, 'x.xml');
  t.equal(c.namespace, 'testrealm');
  t.same(c.edgeListeners, [{ type: 'udp', port: 4000 }, { type: 'tcp', port: 0 }, { type: 'udp', port: 0 }, { type: 'udp', port: 0 }]);
  t.same(c.remoteTAs.map(String), ['brunet.udp://10.0.0.1:4000', 'brunet.tcp://[::1]:4001']);
  t.same(c.xmlRpc, { enabled: false, port: 10001 });
  t.ok(c.nodeAddress?.equals(ADDR));
  t.same(c.devicesToBind, ['eth0', 'wlan0']);
  t.ok(parseNodeConfig('\uFEFF' + FULL), 'a byte-order mark is tolerated');
});

t.test('defaults when elements are absent', async (t) => {
  const c = parseNodeConfig('<NodeConfig><BrunetNamespace>ns</BrunetNamespace></NodeConfig>');
  t.equal(c.source, undefined);
  t.same(c.edgeListeners, [{ type: 'udp', port: 0 }]);
  t.same(c.remoteTAs, []);
  t.same(c.xmlRpc, { enabled: true, port: 10000 });
  t.equal(c.nodeAddress, undefined);
  t.same(c.devicesToBind, []);
  t.same(parseNodeConfig(wrap('<XmlRpcManager/><RemoteTAs/><DevicesToBind></DevicesToBind>')).xmlRpc, { enabled: true, port: 10000 });
  t.same(parseNodeConfig(wrap('<XmlRpcManager><Port>9</Port></XmlRpcManager>')).xmlRpc, { enabled: true, port: 9 });
  for (const [s, v] of [['true', true], ['True', true], ['1', true], ['false', false], ['0', false]] as const) {
    t.equal(parseNodeConfig(wrap(`<XmlRpcManager><Enabled>${s}</Enabled></XmlRpcManager>`)).xmlRpc.enabled, v, s);
  }
  t.ok(NODE_CONFIG_ELEMENTS.includes('BrunetNamespace') && NODE_CONFIG_ELEMENTS.includes('NodeAddress'));
});

t.test('config/node.config.xml parses', async (t) => {
  const path = join(ROOT, 'config/node.config.xml');
  const c = loadNodeConfig(path);
  t.equal(c.source, path);
  t.ok(c.namespace.length > 0);
  t.same(c.edgeListeners, [{ type: 'udp', port: 0 }, { type: 'tcp', port: 0 }]);
  t.same(c.remoteTAs.map(String), ['brunet.udp://127.0.0.1:40000', 'brunet.tcp://127.0.0.1:40000']);
  t.same(c.xmlRpc, { enabled: true, port: 10000 });
  t.same(c.devicesToBind, []);
});

t.test('errors name the element, on one line', async (t) => {
  const cases: Array<[string, string, string, RegExp?]> = [
    // [label, xml, element, reason]
    ['malformed', '<NodeConfig><BrunetNamespace>x</NodeConfig>', 'NodeConfig:1:31', /not well-formed XML: end tag <\/NodeConfig> does not match <BrunetNamespace> \(line 1, column 13\)/],
    ['malformed multi-line', '<NodeConfig>\n<EdgeListeners>\n</NodeConfig>', 'NodeConfig:3:1', /does not match/],
    ['empty document', '', 'NodeConfig:1:1', /no root element/],
    ['wrong root', '<Config><BrunetNamespace>x</BrunetNamespace></Config>', 'NodeConfig', /<Config>/],
    ['two roots', '<NodeConfig/><NodeConfig/>', 'NodeConfig:1:14', /a second root element/],
    ['unknown top-level', wrap('<Bogus>1</Bogus>'), 'NodeConfig/Bogus', /unknown element/],
    ['wrong case', wrap('<brunetNamespace>x</brunetNamespace>'), 'NodeConfig/brunetNamespace', /unknown element/],
    ['unknown in EdgeListeners', wrap('<EdgeListeners><Listener/></EdgeListeners>'), 'EdgeListeners/Listener', /unknown/],
    ['unknown in EdgeListener', wrap('<EdgeListeners><EdgeListener type="udp"><Port>1</Port></EdgeListener></EdgeListeners>'), 'EdgeListeners/EdgeListener[1]/Port', /unknown/],
    ['unknown in RemoteTAs', wrap('<RemoteTAs><TA>x</TA></RemoteTAs>'), 'RemoteTAs/TA', /unknown/],
    ['unknown in XmlRpcManager', wrap('<XmlRpcManager><port>1</port></XmlRpcManager>'), 'XmlRpcManager/port', /unknown/],
    ['unknown in DevicesToBind', wrap('<DevicesToBind><Dev>x</Dev></DevicesToBind>'), 'DevicesToBind/Dev', /unknown/],
    ['element inside a text element', wrap('<NodeAddress><x/></NodeAddress>'), 'NodeAddress/x', /unknown/],
    ['unknown attribute', wrap('<EdgeListeners><EdgeListener type="udp" kind="x"/></EdgeListeners>'), 'EdgeListeners/EdgeListener[1]', /attribute "kind"/],
    ['text in a container', wrap('<RemoteTAs>brunet.udp://1.2.3.4:5</RemoteTAs>'), 'RemoteTAs', /text/],
    ['bad TA', wrap('<RemoteTAs><Transport>brunet.udp://1.2.3.4</Transport></RemoteTAs>'), 'RemoteTAs/Transport[1]', /malformed transport address/],
    ['bad TA port', wrap('<RemoteTAs><Transport>brunet.udp://1.2.3.4:5</Transport><Transport>brunet.udp://1.2.3.4:70000</Transport></RemoteTAs>'), 'RemoteTAs/Transport[2]', /out of range/],
    ['function TA', wrap('<RemoteTAs><Transport>brunet.function://localhost:5</Transport></RemoteTAs>'), 'RemoteTAs/Transport[1]', /only udp and tcp/],
    ['listener port too big', wrap('<EdgeListeners><EdgeListener type="udp"><port>65536</port></EdgeListener></EdgeListeners>'), 'EdgeListeners/EdgeListener[1]/port', /out of range 0\.\.65535/],
    ['listener port negative', wrap('<EdgeListeners><EdgeListener type="tcp"><port>-1</port></EdgeListener></EdgeListeners>'), 'EdgeListeners/EdgeListener[1]/port', /out of range/],
    ['listener port not integer', wrap('<EdgeListeners><EdgeListener type="udp"><port>12.5</port></EdgeListener></EdgeListeners>'), 'EdgeListeners/EdgeListener[1]/port', /integer/],
    ['listener port junk', wrap('<EdgeListeners><EdgeListener type="udp"><port>abc</port></EdgeListener></EdgeListeners>'), 'EdgeListeners/EdgeListener[1]/port', /integer/],
    ['xmlrpc port 0', wrap('<XmlRpcManager><Port>0</Port></XmlRpcManager>'), 'XmlRpcManager/Port', /out of range 1\.\.65535/],
    ['xmlrpc port 70000', wrap('<XmlRpcManager><Port>70000</Port></XmlRpcManager>'), 'XmlRpcManager/Port', /out of range/],
    ['xmlrpc port junk', wrap('<XmlRpcManager><Port>10k</Port></XmlRpcManager>'), 'XmlRpcManager/Port', /integer/],
    ['xmlrpc port empty', wrap('<XmlRpcManager><Port/></XmlRpcManager>'), 'XmlRpcManager/Port', /integer/],
    ['bad boolean', wrap('<XmlRpcManager><Enabled>yes</Enabled></XmlRpcManager>'), 'XmlRpcManager/Enabled', /true or false/],
    ['duplicate singleton', wrap('<XmlRpcManager><Enabled>1</Enabled><Enabled>0</Enabled></XmlRpcManager>'), 'XmlRpcManager/Enabled', /2 times/],
    ['missing namespace', '<NodeConfig><RemoteTAs/></NodeConfig>', 'BrunetNamespace', /missing/],
    ['empty namespace', wrap('', '<BrunetNamespace>  </BrunetNamespace>'), 'BrunetNamespace', /empty/],
    ['self-closed namespace', wrap('', '<BrunetNamespace/>'), 'BrunetNamespace', /empty/],
    ['two namespaces', wrap('<BrunetNamespace>b</BrunetNamespace>'), 'BrunetNamespace', /2 times/],
    ['bad NodeAddress', wrap('<NodeAddress>brunet:node:XYZ</NodeAddress>'), 'NodeAddress', /invalid address/],
    ['class 1 NodeAddress', wrap(`<NodeAddress>${Address.fromBigInt(ADDR.value | 1n).key}</NodeAddress>`), 'NodeAddress', /class 0/],
    ['listener type', wrap('<EdgeListeners><EdgeListener type="function"/></EdgeListeners>'), 'EdgeListeners/EdgeListener[1]', /"udp" or "tcp"/],
    ['listener type missing', wrap('<EdgeListeners><EdgeListener><port>1</port></EdgeListener></EdgeListeners>'), 'EdgeListeners/EdgeListener[1]', /missing attribute type/],
    ['no listeners', wrap('<EdgeListeners/>'), 'EdgeListeners', /no <EdgeListener>/],
    ['duplicate listener', wrap('<EdgeListeners><EdgeListener type="udp"><port>5</port></EdgeListener><EdgeListener type="tcp"><port>5</port></EdgeListener><EdgeListener type="udp"><port>5</port></EdgeListener></EdgeListeners>'), 'EdgeListeners/EdgeListener[3]', /duplicate udp listener on port 5/],
    ['empty device', wrap('<DevicesToBind><Device/></DevicesToBind>'), 'DevicesToBind/Device[1]', /empty/],
  ];
  for (const [label, xml, element, reason] of cases) {
    let err: unknown;
    try { parseNodeConfig(xml); } catch (e) { err = e; }
    t.type(err, ConfigError, label);
    if (!(err instanceof ConfigError)) continue;
    t.equal(err.element, element, `${label}: element`);
    t.ok(err.message.startsWith(`${element}: `), `${label}: message names the element: ${err.message}`);
    t.notMatch(err.message, /\n/, `${label}: one line`);
    if (reason) t.match(err.message, reason, `${label}: reason`);
  }
});

t.test('loadNodeConfig file errors', async (t) => {
  const d = tempDir(t);
  const missing = join(d, 'nope.xml');
  throwsConfig(t, () => loadNodeConfig(missing), 'file', `file: cannot read ${missing}: no such file`);
  throwsConfig(t, () => loadNodeConfig(d), 'file', undefined, 'a directory is unreadable as a config');
  const bad = join(d, 'bad.xml');
  writeFileSync(bad, wrap('<XmlRpcManager><Port>0</Port></XmlRpcManager>'));
  throwsConfig(t, () => loadNodeConfig(bad), 'XmlRpcManager/Port', new RegExp(`\\(in ${bad}\\)$`));
  throwsConfig(t, () => writeNodeAddress(missing, ADDR), 'file', /no such file/);
});

t.test('writeNodeAddress', async (t) => {
  const d = tempDir(t);
  const path = join(d, 'node.config');
  const original = readFileSync(join(ROOT, 'config/node.config.xml'), 'utf8');
  writeFileSync(path, original);
  chmodSync(path, 0o640);
  const a1 = Address.random(seededRandom(1));
  const a2 = Address.random(seededRandom(2));

  writeNodeAddress(path, a1);
  const once = readFileSync(path, 'utf8');
  t.ok(loadNodeConfig(path).nodeAddress?.equals(a1), 'inserted and loadable');
  t.equal(once.split(a1.key).length, 2, 'exactly one occurrence');
  t.ok(once.includes(`  <NodeAddress>${a1.key}</NodeAddress>\n</NodeConfig>`), 'own indented line before </NodeConfig>');
  t.equal(once.replace(`  <NodeAddress>${a1.key}</NodeAddress>\n`, ''), original, 'nothing else changed (comments, layout)');
  t.equal(statSync(path).mode & 0o777, 0o640, 'file mode kept');

  writeNodeAddress(path, a2);
  const twice = readFileSync(path, 'utf8');
  t.ok(loadNodeConfig(path).nodeAddress?.equals(a2), 'second write replaces');
  t.equal((twice.match(/<NodeAddress>brunet:node:/g) ?? []).length, 1, 'not duplicated');
  t.equal(twice, once.replace(a1.key, a2.key));
  writeNodeAddress(path, a2);
  t.equal(readFileSync(path, 'utf8'), twice, 'idempotent');
  t.same(readdirSync(d), ['node.config'], 'no temp files left behind');

  // An existing element (even self-closed, with a commented-out one before it) is replaced in place.
  const crlf = '<NodeConfig>\r\n\t<!-- <NodeAddress>old</NodeAddress> -->\r\n\t<BrunetNamespace>n</BrunetNamespace>\r\n\t<NodeAddress />\r\n</NodeConfig>\r\n';
  writeFileSync(path, crlf);
  writeNodeAddress(path, a1);
  t.equal(readFileSync(path, 'utf8'), crlf.replace('<NodeAddress />', `<NodeAddress>${a1.key}</NodeAddress>`));
  // Inserting into a one-line file keeps the CRLF style.
  writeFileSync(path, '<NodeConfig><BrunetNamespace>n</BrunetNamespace></NodeConfig>\r\n');
  writeNodeAddress(path, a1);
  t.ok(loadNodeConfig(path).nodeAddress?.equals(a1));
  t.match(readFileSync(path, 'utf8'), /<\/BrunetNamespace>\r\n {2}<NodeAddress>[A-Za-z0-9:]+<\/NodeAddress>\r\n<\/NodeConfig>/);

  // Writing through a symlink updates the target and keeps the link.
  const link = join(d, 'link.config');
  symlinkSync(path, link);
  writeNodeAddress(link, a2);
  t.ok(statSync(link).isFile() && loadNodeConfig(path).nodeAddress?.equals(a2));

  throwsConfig(t, () => writeNodeAddress(path, Address.fromBigInt(a1.value | 1n)), 'NodeAddress', /class 0/);
  const broken = '<NodeConfig><BrunetNamespace>n</NodeConfig>';
  writeFileSync(path, broken);
  throwsConfig(t, () => writeNodeAddress(path, a1), `${path}:1:31`, /not well-formed XML/, 'refuses to edit a broken file');
  t.equal(readFileSync(path, 'utf8'), broken);
  writeFileSync(path, '<NodeConfig><BrunetNamespace>n</BrunetNamespace>');
  throwsConfig(t, () => writeNodeAddress(path, a1), `${path}:1:1`, /<NodeConfig> is not closed/);
  writeFileSync(path, '<NodeConfig/>');
  throwsConfig(t, () => writeNodeAddress(path, a1), 'NodeConfig', /no closing/);
});

t.test('bootstrap/bootstrap_demo_prepare.sh', async (t) => {
  const script = join(ROOT, 'bootstrap/bootstrap_demo_prepare.sh');
  const d = tempDir(t);
  const run = (...args: string[]) => spawnSync('bash', [script, ...args], { cwd: d, encoding: 'utf8' });
  const ok = run('demo-ns', '10.1.2.3', '40123');
  t.equal(ok.status, 0, ok.stderr);
  const c = loadNodeConfig(join(d, 'bootstrap.config'));
  t.equal(c.namespace, 'demo-ns');
  t.same(c.edgeListeners, [{ type: 'udp', port: 40123 }]);
  t.same(c.remoteTAs.map(String), ['brunet.udp://10.1.2.3:40123']);
  t.same(c.xmlRpc, { enabled: true, port: 10000 });
  t.ok(statSync(script).mode & 0o111, 'executable');

  for (const args of [[], ['ns', '1.2.3.4'], ['ns', '1.2.3.4', '5', 'extra'], ['ns', '1.2.3.4', 'abc'],
    ['ns', '1.2.3.4', '0'], ['ns', '1.2.3.4', '65536'], ['ns', '1.2.3.4', '-5'], ['ns', '300.1.1.1', '5'], ['', '1.2.3.4', '5'], ['a<b', '1.2.3.4', '5']]) {
    const r = run(...args);
    t.equal(r.status, 2, `exit 2 for ${JSON.stringify(args)}`);
    t.match(r.stderr, /usage: bootstrap_demo_prepare\.sh NAMESPACE IP PORT/);
  }
  t.equal(loadNodeConfig(join(d, 'bootstrap.config')).edgeListeners[0]?.port, 40123, 'bad runs leave the file alone');
});

t.test('bootstrap/run_bootstrap_node.sh resolves its directory through symlinks', async (t) => {
  const d = tempDir(t);
  const link = join(d, 'rbn');
  symlinkSync(join(ROOT, 'bootstrap/run_bootstrap_node.sh'), link);
  const r = spawnSync(link, ['--help'], { encoding: 'utf8', timeout: 20000 });
  // Either the built CLI runs, or the script says where it looked: under the repo, not the link's dir.
  if (r.status !== 0) t.ok(r.stderr.includes(`${ROOT}/bootstrap/../dist/src/cli/run-bootstrap-node.js not found`), r.stderr);
  else t.pass('built CLI ran');
});
