// The <Dht> section of NodeConfig.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { parseNodeConfig, ConfigError } from '../src/config/node-config.js';

const wrap = (inner: string) => `<NodeConfig><BrunetNamespace>x</BrunetNamespace>${inner}</NodeConfig>`;

t.test('defaults and values', async (t) => {
  t.same(parseNodeConfig(wrap('')).dht, { degree: 8, maxValueBytes: 1024, maxTtl: 604800, repairInterval: 300 });
  const c = parseNodeConfig(wrap('<Dht><DataDirectory>data</DataDirectory><Degree>4</Degree><MaxValueBytes>2048</MaxValueBytes><MaxTtl>3600</MaxTtl><RepairInterval>60</RepairInterval></Dht>'));
  t.same(c.dht, { dataDirectory: 'data', degree: 4, maxValueBytes: 2048, maxTtl: 3600, repairInterval: 60 });
  t.ok(parseNodeConfig(readFileSync(new URL('../config/node.config.xml', import.meta.url), 'utf8')), 'the example config parses');
});

t.test('bad values name the element', async (t) => {
  const cases: [string, RegExp][] = [
    ['<Dht><Degree>0</Degree></Dht>', /^Dht\/Degree: 0 out of range/],
    ['<Dht><Degree>x</Degree></Dht>', /^Dht\/Degree: expected a whole number/],
    ['<Dht><MaxValueBytes>-1</MaxValueBytes></Dht>', /^Dht\/MaxValueBytes/],
    ['<Dht><MaxTtl>0</MaxTtl></Dht>', /^Dht\/MaxTtl/],
    ['<Dht><RepairInterval>0</RepairInterval></Dht>', /^Dht\/RepairInterval: 0 out of range/],
    ['<Dht><DataDirectory></DataDirectory></Dht>', /^Dht\/DataDirectory: must not be empty/],
    ['<Dht><Bogus>1</Bogus></Dht>', /^Dht\/Bogus: unknown element/],
  ];
  for (const [xml, re] of cases) {
    let err: unknown;
    try { parseNodeConfig(wrap(xml)); } catch (e) { err = e; }
    t.ok(err instanceof ConfigError, `${xml} is rejected with a ConfigError`);
    t.match((err as Error).message, re);
  }
});
