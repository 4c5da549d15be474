// Neighbour lists decoded from their bytes (decodeValueRaw, listItems, decodeNodeInfoListRaw):
// the same values, NodeInfos and errors as decoding the whole message as a value first, and a
// NodeInfo seen before comes out of the cache as the object decodeNodeInfo gives.
import t from 'tap';
import fc from 'fast-check';
import { Address } from '../src/address/address.js';
import { decodeLink, encodeLink, type LinkMessage } from '../src/connection/link-wire.js';
import { decodeNodeInfo, decodeNodeInfoList, decodeNodeInfoListRaw, encodeNodeInfo, type NodeInfo } from '../src/connection/node-info.js';
import { TransportAddress } from '../src/transport/ta.js';
import { seededRandom } from '../src/util/random.js';
import { asMap, decodeValue, decodeValueRaw, encodeValue, listItems, WireError, type Value } from '../src/wire/value.js';
import { mutate } from '../bench/fuzz/mutate.js';
import { prng } from '../bench/fuzz/rng.js';

const rnd = seededRandom(11);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const udp = (i: number) => TransportAddress.parse(`brunet.udp://10.1.${i >> 8 & 255}.${i & 255}:${4000 + (i % 50)}`);
const info = (i: number, n = 2): NodeInfo => ({ address: Address.random(rnd), tas: Array.from({ length: n }, (_, j) => udp(i * 13 + j)) });
const keyOf = (n: NodeInfo) => `${n.address.key} ${n.tas.map((x) => x.key).join(' ')}`;

/**
 * What decodeLink gave before: the whole body decoded as a value, then its neighbour list; the
 * other fields checked by decoding the message without its list.
 */
function reference(p: Uint8Array, what: string): NodeInfo[] {
  const { nb, ...rest } = asMap(decodeValue(p, 3), what);
  const infos = decodeNodeInfoList(nb ?? [], `${what}.nb`);
  decodeLink(new Uint8Array([...p.subarray(0, 3), ...encodeValue(rest)]));
  return infos;
}
/** 'ok <infos>' or 'WireError' (anything else is rethrown). */
function outcome(f: () => NodeInfo[]): string {
  try { return `ok ${f().map(keyOf).join(' | ')}`; } catch (e) {
    if (e instanceof WireError) return 'WireError';
    throw e;
  }
}

const { value: valueArb } = fc.letrec<{ value: Value }>((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, fc.constant(null), fc.boolean(), fc.integer(), fc.string({ maxLength: 8 }),
    fc.uint8Array({ maxLength: 8 }), fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom('nb', 'a', 't', 'x'), tie('value'), { maxKeys: 4 })),
}));

t.test('decodeValueRaw: the value without the entry, and the entry\'s exact bytes', async (t) => {
  fc.assert(fc.property(valueArb, (v) => {
    const b = encodeValue(v);
    const { value, raw } = decodeValueRaw(b, 0, 'nb');
    const whole = decodeValue(b);
    const isMap = whole !== null && typeof whole === 'object' && !Array.isArray(whole) && !(whole instanceof Uint8Array);
    if (!isMap || !('nb' in whole)) return raw === undefined && hex(encodeValue(value)) === hex(b);
    const { nb, ...rest } = whole;
    return hex(raw!) === hex(encodeValue(nb!)) && hex(encodeValue(value)) === hex(encodeValue(rest));
  }), { numRuns: 2000 });
  t.pass('2,000 random values');
  t.throws(() => decodeValueRaw(encodeValue({ nb: [1, 2] }).subarray(0, 20), 0, 'nb'), WireError, 'a truncated entry is a WireError');
  // { nb: [[[…40 lists…[null]…]]] }
  const parts = [8, 0, 0, 0, 1, 0, 0, 0, 2, 110, 98];
  for (let i = 0; i < 40; i++) parts.push(7, 0, 0, 0, 1);
  parts.push(0);
  const deepBytes = new Uint8Array(parts);
  t.throws(() => decodeValue(deepBytes), /nested too deeply/, 'decodeValue refuses the nesting');
  t.throws(() => decodeValueRaw(deepBytes, 0, 'nb'), /nested too deeply/, 'and so does the skipped entry');
});

t.test('listItems: the items\' bounds, or undefined for anything but a list', async (t) => {
  const items = [encodeValue('a'), encodeValue({ x: [1, 2] }), encodeValue(null)];
  const list = encodeValue(['a', { x: [1, 2] }, null]);
  const at = listItems(list, 0)!;
  t.equal(at.length, 4);
  t.same(at.slice(0, 3).map((s, i) => hex(list.subarray(s, at[i + 1]))), items.map(hex));
  t.equal(listItems(encodeValue({ a: 1 }), 0), undefined);
  t.throws(() => listItems(list.subarray(0, list.length - 1), 0), WireError);
});

t.test('link messages: neighbour lists decode as through the value decoder, mutated ones too', async (t) => {
  const pool: [LinkMessage['t'], Uint8Array][] = [];
  for (let k = 0; k < 60; k++) {
    const nb = Array.from({ length: k % 7 }, (_, i) => info(k * 7 + i, i % 4));
    const local = info(1000 + k);
    pool.push(['status', encodeLink({ t: 'status', neighbors: nb })]);
    pool.push(['reply', encodeLink({ t: 'reply', id: k, code: 0, local, neighbors: nb })]);
    pool.push(['close', encodeLink({ t: 'close', reason: 'x', neighbors: nb })]);
  }
  const r = prng(0x7ab1e);
  let same = 0, errors = 0;
  for (let i = 0; i < 20_000; i++) {
    const [kind, orig] = pool[r.int(pool.length)]!;
    const p = i < pool.length ? orig : mutate(r, orig, 3);
    const want = outcome(() => reference(p, kind));
    const got = outcome(() => { const m = decodeLink(p); return 'neighbors' in m ? m.neighbors : []; });
    // The reference reads no header: compare the inputs whose PType, version and type stayed.
    if (p[0] !== orig[0] || p[1] !== orig[1] || p[2] !== orig[2]) continue;
    if (got !== want) { t.fail(`${kind} ${hex(p)}: ${got.slice(0, 80)} != ${want.slice(0, 80)}`); break; }
    same++;
    if (want === 'WireError') errors++;
  }
  t.ok(same > 15_000 && errors > 1000 && same - errors > 500, `${same} compared, ${errors} WireErrors on both paths`);
});

t.test('a NodeInfo met again is the shared object decodeNodeInfo gives', async (t) => {
  const nb = [info(1), info(2, 3), info(3, 0)];
  const p = encodeLink({ t: 'status', neighbors: nb });
  const a = decodeLink(p), b = decodeLink(p);
  if (a.t !== 'status' || b.t !== 'status') throw new Error('not a status');
  for (let i = 0; i < nb.length; i++) {
    t.equal(b.neighbors[i], a.neighbors[i], `neighbour ${i}: one object`);
    t.equal(decodeNodeInfo(decodeValue(encodeValue(encodeNodeInfo(nb[i]!)))), a.neighbors[i], `neighbour ${i}: decodeNodeInfo's`);
    t.equal(keyOf(a.neighbors[i]!), keyOf(nb[i]!));
  }
});

t.test('more items than kept: the first 32, and a malformed one beyond is still an error', async (t) => {
  const many = Array.from({ length: 40 }, (_, i) => encodeNodeInfo(info(500 + i, 1)));
  const raw = encodeValue(many);
  const got = decodeNodeInfoListRaw(raw, 'nb');
  t.equal(got.length, 32);
  t.same(got.map(keyOf), decodeNodeInfoList(decodeValue(raw), 'nb').map(keyOf));
  const bad = encodeValue([...many, 'x']);
  bad[bad.length - 1] = 0xff; // the last string's one byte: not UTF-8
  t.throws(() => decodeValue(bad), WireError);
  t.throws(() => decodeNodeInfoListRaw(bad, 'nb'), WireError);
  t.same(decodeNodeInfoListRaw(undefined, 'nb'), [], 'absent: none');
  t.same(decodeNodeInfoListRaw(encodeValue(null), 'nb'), [], 'null: none, as `nb ?? []`');
  t.throws(() => decodeNodeInfoListRaw(encodeValue('x'), 'nb'), /nb: expected a list/);
});
