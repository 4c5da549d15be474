// --log-format: the JSON logger writes one object per line with time, level, node,
// component, message and the line's fields; the text format is unchanged but for fields.
import t from 'tap';
import { JoinFailures } from '../src/cli/join-failure.js';
import { createJsonLogger, createLogger, LOG_FORMAT_USAGE, loggerFor, parseLogFormat, quietable } from '../src/util/log.js';

const capture = () => {
  const lines: string[] = [];
  return { lines, sink: (l: string) => { lines.push(l); } };
};

t.test('json: one object per line; node from the first child, component from deeper children or the message', async (t) => {
  const { lines, sink } = capture();
  const log = createJsonLogger('info', sink);
  log.info('node address X saved in Y');
  const node = log.child('ABCDEFGH');
  node.warn('dhcp: no address for 02:00:00:00:00:01', { mac: '02:00:00:00:00:01', tries: 3 });
  node.debug('hidden below info');
  node.child('switch').error('loop detected: x');
  log.info('tricky "quotes"\nand a newline', { time: 'not overwritten', ok: true });
  t.equal(lines.length, 4, 'debug is filtered by the level');
  const objs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const [i, o] of objs.entries()) {
    t.same(Object.keys(o).slice(0, 5), ['time', 'level', 'node', 'component', 'message'], `line ${i}: the fixed keys first`);
    t.ok(!Number.isNaN(Date.parse(String(o.time))), 'an ISO time');
    t.notOk(lines[i]!.includes('\n'), 'one line');
  }
  t.match(objs[0], { level: 'info', node: null, component: 'main', message: 'node address X saved in Y' });
  t.match(objs[1], { level: 'warn', node: 'ABCDEFGH', component: 'dhcp', message: 'no address for 02:00:00:00:00:01', mac: '02:00:00:00:00:01', tries: 3 });
  t.match(objs[2], { level: 'error', node: 'ABCDEFGH', component: 'switch', message: 'loop detected: x' });
  t.match(objs[3], { component: 'main', message: 'tricky "quotes"\nand a newline', ok: true });
  t.not(objs[3]!.time, 'not overwritten', 'fields never replace the fixed keys');
});

t.test('text stays as it was; fields are appended as key=value', async (t) => {
  const { lines, sink } = capture();
  const log = loggerFor('info', 'text', sink);
  log.child('N1').warn('dhcp: no address');
  log.info('failed', { failure: 'timeout', why: 'no answer' });
  t.same(lines.map((l) => l.slice(25)), ['WARN N1 dhcp: no address', 'INFO failed failure=timeout why="no answer"']);
  t.match(lines[0], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARN /);
  const plain = capture();
  createLogger('info', '', plain.sink).child('N1').warn('dhcp: no address');
  t.equal(plain.lines[0]!.slice(25), lines[0]!.slice(25), 'loggerFor text = createLogger');
});

t.test('quietable and JoinFailures pass fields through', async (t) => {
  const { lines, sink } = capture();
  const q = quietable(createJsonLogger('debug', sink));
  const f = new JoinFailures(q);
  f.log.child('N1').warn('secure handshake to brunet.udp://10.0.0.1:4000 failed: timed out (no answer)', { failure: 'timeout' });
  q.quiet();
  q.info('leaving', { reason: 'SIGTERM' });
  t.match(JSON.parse(lines[0]!), { level: 'warn', node: 'N1', component: 'main', failure: 'timeout' });
  t.match(JSON.parse(lines[1]!), { level: 'debug', message: 'leaving', reason: 'SIGTERM' }, 'quiet: info becomes debug, fields kept');
  t.equal(f.cause(), 'secure handshake to brunet.udp://10.0.0.1:4000 failed: timed out (no answer)');
});

t.test('--log-format values', async (t) => {
  t.equal(LOG_FORMAT_USAGE, '--log-format text|json');
  t.equal(parseLogFormat('json'), 'json');
  t.equal(parseLogFormat('text'), 'text');
  for (const bad of ['', 'JSON', 'xml', 'toString']) t.equal(parseLogFormat(bad), undefined, JSON.stringify(bad));
});
