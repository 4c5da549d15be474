import t from 'tap';
import { Events } from '../src/util/events.js';

type M = { data: [n: number, s: string]; ping: [] };

t.test('listeners run in order with the emitted arguments', async (t) => {
  const ev = new Events<M>();
  const got: string[] = [];
  ev.on('data', (n, s) => got.push(`a${n}${s}`));
  ev.on('data', (n, s) => got.push(`b${n}${s}`));
  ev.on('ping', () => got.push('ping'));
  ev.emit('data', 1, 'x');
  ev.emit('ping');
  t.same(got, ['a1x', 'b1x', 'ping']);
  t.equal(ev.count('data'), 2);
});

t.test('an event without listeners is a no-op', async (t) => {
  const ev = new Events<M>();
  t.doesNotThrow(() => ev.emit('ping'));
  t.equal(ev.count('ping'), 0);
});

t.test('off removes exactly that listener, once', async (t) => {
  const ev = new Events<M>();
  const got: string[] = [];
  const f = () => got.push('f');
  const offA = ev.on('ping', f);
  ev.on('ping', f);
  offA();
  offA();
  ev.emit('ping');
  t.same(got, ['f'], 'the second registration of the same function stays');
  t.equal(ev.count('ping'), 1);
});

t.test('changes during an emit take effect from the next emit', async (t) => {
  const ev = new Events<M>();
  const got: string[] = [];
  let offB = (): void => {};
  ev.on('ping', () => { got.push('a'); offB(); ev.on('ping', () => got.push('c')); });
  offB = ev.on('ping', () => got.push('b'));
  ev.emit('ping');
  t.same(got, ['a', 'b'], 'b removed and c added during the emit: this emit still sees the old list');
  got.length = 0;
  ev.emit('ping');
  t.same(got, ['a', 'c']);
});
