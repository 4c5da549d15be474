// The logger pieces the commands share: --log-level values, the shutdown's quiet mode, and
// the join-failure record that `groupvpn start` reports when it cannot join.
import t from 'tap';
import { JoinFailures } from '../src/cli/join-failure.js';
import { createLogger, LEVELS, LOG_LEVEL_USAGE, parseLevel, quietable } from '../src/util/log.js';

const capture = (level: Parameters<typeof createLogger>[0]) => {
  const lines: string[] = [];
  // Without the timestamp: "LEVEL prefix message".
  return { lines, log: createLogger(level, '', (l) => lines.push(l.slice(25))) };
};

t.test('--log-level: one list for every command', async (t) => {
  t.same(LEVELS, ['debug', 'info', 'warn', 'error', 'silent']);
  t.equal(LOG_LEVEL_USAGE, '--log-level debug|info|warn|error|silent');
  for (const l of LEVELS) t.equal(parseLevel(l), l);
  for (const bad of ['', 'INFO', 'verbose', 'toString', 'constructor']) t.equal(parseLevel(bad), undefined, JSON.stringify(bad));
  const { lines, log } = capture('silent');
  log.error('x');
  t.same(lines, [], 'silent prints nothing, not even errors');
});

t.test('quietable: after quiet(), info and warn become debug in every child; errors stay', async (t) => {
  const shown = capture('info');
  const q = quietable(shown.log);
  const child = q.child('N1');
  q.info('a'); child.warn('b'); child.debug('hidden');
  q.quiet();
  q.info('c'); child.warn('d'); child.child('N2').info('e'); child.error('f');
  t.same(shown.lines, ['INFO a', 'WARN N1 b', 'ERROR N1 f']);
  const all = capture('debug');
  const d = quietable(all.log);
  d.quiet();
  d.child('N1').warn('secure handshake failed');
  t.same(all.lines, ['DEBUG N1 secure handshake failed'], 'still there at debug level');
});

t.test('JoinFailures: the latest failure per TA, from any level, passing every line through', async (t) => {
  const { lines, log } = capture('warn');
  const f = new JoinFailures(log);
  t.equal(f.cause(), undefined, 'nothing failed yet');
  const node = f.log.child('ABCD');
  node.debug('bootstrap brunet.udp://10.0.0.1:4000 did not answer');
  t.equal(f.cause(), undefined, '"did not answer" says no cause');
  f.log.warn('secure handshake to brunet.udp://10.0.0.1:4000 failed: timed out (no answer)');
  // The link layer's repetition of the same failure is not a new cause.
  node.debug('edge to brunet.udp://10.0.0.1:4000 failed: handshake with brunet.udp://10.0.0.1:4000: timed out (no answer)');
  t.equal(f.cause(), 'secure handshake to brunet.udp://10.0.0.1:4000 failed: timed out (no answer)');
  f.log.info('secure handshake to brunet.udp://10.0.0.1:4000 failed: connection closed during handshake: closed by peer (peer rejected our hello: different namespace or protocol version?)');
  t.match(f.cause(), /^secure handshake to brunet\.udp:\/\/10\.0\.0\.1:4000 failed: connection closed .*different namespace/, 'the latest wins');
  node.debug('edge to brunet.udp://10.0.0.2:4000 failed: send EHOSTUNREACH 10.0.0.2:4000');
  t.match(f.cause(), /protocol version\?\); edge to brunet\.udp:\/\/10\.0\.0\.2:4000 failed: send EHOSTUNREACH/, 'one entry per TA, at debug level too');
  f.log.info('secure handshake to brunet.udp://10.0.0.2:4000 failed: closed locally: listener stopped');
  t.match(f.cause(), /EHOSTUNREACH/, 'our own shutdown is not a cause');
  node.info('brunet.udp://10.0.0.3:4000 is in another namespace');
  f.log.warn('secure handshake to brunet.udp://10.0.0.4:4000 failed: timed out (no answer)');
  t.equal(f.cause()!.split('; ').length, 3, 'at most the three latest TAs');
  t.notMatch(f.cause(), /10\.0\.0\.1/);
  t.same(lines.filter((l) => !l.startsWith('DEBUG')), [
    'WARN secure handshake to brunet.udp://10.0.0.1:4000 failed: timed out (no answer)',
    'WARN secure handshake to brunet.udp://10.0.0.4:4000 failed: timed out (no answer)',
  ], 'the inner logger still filters by its own level');
});
