import t from 'tap';
import fc from 'fast-check';
import { setImmediate as tick } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Address } from '../src/address/address.js';
import { decodeNodeInfo, encodeNodeInfo } from '../src/connection/node-info.js';
import { TransportAddress } from '../src/transport/ta.js';
import { cryptoRandom } from '../src/util/random.js';
import { BytesInterner, hashBytes, Interner } from '../src/util/intern.js';

// The runner does not pass --expose-gc: turn it on and take gc from a fresh context.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

t.test('Interner: one live instance per key, built once', async (t) => {
  const i = new Interner<{ k: string }>();
  let built = 0;
  const a = i.get('x', () => { built++; return { k: 'x' }; });
  const b = i.get('x', () => { built++; return { k: 'x' }; });
  const c = i.get('y', () => { built++; return { k: 'y' }; });
  t.equal(a, b);
  t.not(a, c);
  t.equal(built, 2);
  t.equal(i.size, 2);
  t.equal(hashBytes(Uint8Array.of(1, 2, 3)), hashBytes(Uint8Array.of(1, 2, 3)));
  t.not(hashBytes(Uint8Array.of(1, 2, 3)), hashBytes(Uint8Array.of(3, 2, 1)));
});

t.test('Interner: a value nobody holds can go, and is built again', async (t) => {
  const i = new Interner<{ k: string }>();
  (() => { i.get('gone', () => ({ k: 'gone' })); })();
  const kept = i.get('kept', () => ({ k: 'kept' }));
  // Collection and the finalization callback each take their turn; bounded.
  for (let n = 0; n < 50 && i.size > 1; n++) { gc(); await tick(); }
  t.equal(i.size, 1, 'the dropped entry left the map');
  t.equal(i.get('kept', () => ({ k: 'other' })), kept);
  t.same(i.get('gone', () => ({ k: 'again' })), { k: 'again' });
});

t.test('BytesInterner: one live instance per byte string, found by content, built once', async (t) => {
  const i = new BytesInterner<{ k: Uint8Array }>((x) => x.k);
  let built = 0;
  const make = (b: Uint8Array) => { built++; return { k: b.slice() }; };
  fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 24 }), (b) => {
    const a = i.get(b, make);
    const copy = b.slice();
    b.fill(0xee); // the caller's buffer is not kept
    return i.get(copy, make) === a && a.k.every((x, j) => x === copy[j]) && a.k.length === copy.length;
  }));
  t.equal(built, i.size, 'built once per distinct key');
  t.not(i.get(Uint8Array.of(1, 2), make), i.get(Uint8Array.of(1, 3), make));
  t.not(i.get(Uint8Array.of(1, 2), make), i.get(Uint8Array.of(1, 2, 0), make), 'a longer key is another key');
});

t.test('BytesInterner: keys with the same hash stay apart', async (t) => {
  // A hash with few values: most keys collide.
  const i = new BytesInterner<{ k: Uint8Array }>((x) => x.k, (b) => b.length);
  const make = (b: Uint8Array) => ({ k: b.slice() });
  const pair = [Uint8Array.of(1, 2, 3), Uint8Array.of(3, 2, 1)] as const;
  const a = i.get(pair[0], make), b = i.get(pair[1], make);
  t.not(a, b, 'colliding keys: two instances');
  t.equal(i.get(pair[0], make), a);
  t.equal(i.get(pair[1], make), b);
  t.equal(i.size, 2);
  t.equal(hashBytes(Uint8Array.of(1, 2, 3)), hashBytes(Uint8Array.of(1, 2, 3)));
  t.not(hashBytes(Uint8Array.of(1, 2, 3)), hashBytes(Uint8Array.of(3, 2, 1)));
});

t.test('BytesInterner: a value nobody holds can go, and is built again', async (t) => {
  const i = new BytesInterner<{ k: Uint8Array; tag: string }>((x) => x.k);
  (() => { i.get(Uint8Array.of(9, 9), (b) => ({ k: b.slice(), tag: 'gone' })); })();
  const kept = i.get(Uint8Array.of(7), (b) => ({ k: b.slice(), tag: 'kept' }));
  for (let n = 0; n < 50 && i.size > 1; n++) { gc(); await tick(); }
  t.equal(i.size, 1, 'the dropped entry left the map');
  t.equal(i.get(Uint8Array.of(7), (b) => ({ k: b.slice(), tag: 'other' })), kept);
  t.equal(i.get(Uint8Array.of(9, 9), (b) => ({ k: b.slice(), tag: 'again' })).tag, 'again');
});

t.test('parsed TAs: equal texts share one instance; no forwarders is one frozen list', async (t) => {
  const a = TransportAddress.parse('brunet.udp://10.1.2.3:4000');
  t.equal(a, TransportAddress.parse('brunet.udp://10.1.2.3:4000'), 'same text: same instance');
  t.ok(a.equals(TransportAddress.parse(' brunet.udp://10.1.2.3:4000/ ')), 'another spelling: an equal TA');
  t.not(a, TransportAddress.parse('brunet.udp://10.1.2.3:4001'));
  t.equal(TransportAddress.parse('brunet.udp://[::1]:5').key, 'brunet.udp://[::1]:5');
  const fw = 'A'.repeat(32), tg = 'B'.repeat(32);
  const tun = TransportAddress.parse(`brunet.tunnel://${tg}/${fw}+${fw}`);
  t.equal(tun, TransportAddress.parse(`brunet.tunnel://${tg}/${fw}+${fw}`), 'tunnel TAs are shared too');
  t.ok(tun.equals(TransportAddress.parse(`brunet.tunnel://${tg.toLowerCase()}/${fw}+${fw}`)), 'and upper-cased');
  t.same(tun.forwarders, [fw, fw]);
  t.same(a.forwarders, []);
  t.ok(Object.isFrozen(a.forwarders), 'the shared empty forwarder list cannot be changed');
});

t.test('shared addresses: equal bytes, one instance, same value as fromBytes', async (t) => {
  fc.assert(fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), (b) => {
    const s = Address.shared(b), f = Address.fromBytes(b);
    b[0] = (b[0]! + 1) & 0xff; // the caller's buffer is copied, not kept
    return s === Address.shared(f.bytes) && s.equals(f) && s.key === f.key && s.value === f.value;
  }));
  t.throws(() => Address.shared(new Uint8Array(19)), /20 bytes/);
});

t.test('decoded NodeInfos share their address and TAs', async (t) => {
  const info = { address: Address.random(cryptoRandom), tas: [TransportAddress.parse('brunet.udp://127.0.0.1:7000'), new TransportAddress('tcp', '127.0.0.1', 7001)] };
  const x = decodeNodeInfo(encodeNodeInfo(info)), y = decodeNodeInfo(encodeNodeInfo(info));
  t.equal(x.address, y.address);
  t.ok(x.address.equals(info.address));
  t.equal(x.tas[0], y.tas[0]);
  t.equal(x.tas[1], y.tas[1]);
  t.same(x.tas.map((ta) => ta.key), info.tas.map((ta) => ta.key));
});
