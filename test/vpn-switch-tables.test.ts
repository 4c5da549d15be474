// Switch mode's tables (issue 14), in memory on a fake clock: the MAC learning table, the
// per-source flood limiter and the ARP replication cache.
import t from 'tap';
import fc from 'fast-check';
import { Address } from '../src/address/address.js';
import { createLogger, silentLogger } from '../src/util/log.js';
import {
  ARP_REPLY, ARP_REQUEST, buildArp, buildArpRequest, buildUdpFrame, decodeArp, ipToString, macToString, parseIp, parseMac,
  BROADCAST_MAC, ZERO_MAC,
} from '../src/vpn/frames.js';
import { isGroupKey, macKey, macKeyToString } from '../src/vpn/switch/mac-key.js';
import { MacTable, type MacPort } from '../src/vpn/switch/mac-table.js';
import { FloodLimiter } from '../src/vpn/switch/flood-limiter.js';
import { ArpCache } from '../src/vpn/switch/arp-cache.js';

class FakeClock {
  constructor(public t = 1_700_000_000_000) {}
  now(): number { return this.t; }
  advance(ms: number): void { this.t += ms; }
}

const A = Address.fromBigInt(0x1000n);
const A2 = Address.fromBytes(A.bytes); // equal to A, another object
const B = Address.fromBigInt(0x2000n);
const mac = (n: number): Uint8Array => parseMac(macKeyToString(n));
const M1 = parseMac('02:00:00:00:00:01');
const M2 = parseMac('02:00:00:00:00:02');
const M3 = parseMac('02:00:00:00:00:03');

function captureLog(): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger('warn', '', (l) => lines.push(l)), lines };
}

t.test('mac-key: 48-bit keys round-trip, group bit', (t) => {
  t.equal(macKey(parseMac('ff:ff:ff:ff:ff:ff'), 0), 2 ** 48 - 1);
  t.equal(macKey(Uint8Array.of(9, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc), 1), 0x123456789abc, 'at an offset');
  t.equal(macKeyToString(0x0200000000ff), '02:00:00:00:00:ff');
  t.ok(isGroupKey(macKey(parseMac('01:00:5e:00:00:01'), 0)));
  t.notOk(isGroupKey(macKey(parseMac('fe:ff:ff:ff:ff:ff'), 0)));
  fc.assert(fc.property(fc.uint8Array({ minLength: 6, maxLength: 6 }), (m) => {
    const k = macKey(m, 0);
    return macKeyToString(k) === macToString(m) && isGroupKey(k) === ((m[0]! & 1) === 1) && Number.isSafeInteger(k);
  }));
  t.end();
});

t.test('MacTable: learn, refresh, lookup, entries, offsets', (t) => {
  const c = new FakeClock();
  const m = new MacTable(c, silentLogger);
  const frame = new Uint8Array(14);
  frame.set(M2, 0); frame.set(M1, 6);
  t.equal(m.lookup(frame, 6), undefined, 'unknown');
  t.equal(m.learn(frame, 6, 'local'), 'new');
  t.equal(m.lookup(frame, 6), 'local');
  t.equal(m.learn(M2, 0, A), 'new');
  t.equal(m.lookup(frame, 0), A, 'the member it was learnt behind');
  c.advance(500);
  t.equal(m.learn(M2, 0, A2), 'refreshed', 'an equal Address is the same port');
  t.same(m.entries(), [
    { mac: '02:00:00:00:00:01', port: 'local', ageMs: 500 },
    { mac: '02:00:00:00:00:02', port: A.key, ageMs: 0 },
  ]);
  t.equal(m.size, 2);
  t.equal(m.learn(M1, 1, 'local'), 'ignored', 'fewer than 6 bytes at the offset');
  t.equal(m.lookup(M1, 3), undefined, 'short lookup');
  t.match(m.stats, { learned: 2, refreshed: 1, moves: 0, conflicts: 0, ignored: 1 });
  t.end();
});

t.test('MacTable: group and all-zero sources are never learnt', (t) => {
  const m = new MacTable(new FakeClock(), silentLogger);
  for (const s of ['ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:fb', '33:33:00:00:00:01', '00:00:00:00:00:00']) {
    t.equal(m.learn(parseMac(s), 0, A), 'ignored', s);
    t.equal(m.lookup(parseMac(s), 0), undefined, `${s} not found`);
  }
  t.equal(m.size, 0);
  t.equal(m.stats.ignored, 4);
  t.equal(m.stats.learned, 0);
  t.end();
});

t.test('MacTable: exact aging at ageMs, expire(), forget()', (t) => {
  const c = new FakeClock();
  const m = new MacTable(c, silentLogger, { ageMs: 1000 });
  m.learn(M1, 0, A);
  m.learn(M2, 0, B);
  m.learn(M3, 0, 'local');
  c.advance(999);
  t.equal(m.lookup(M1, 0), A, 'still there at ageMs - 1');
  t.equal(m.expire(), 0, 'nothing to expire before ageMs');
  m.learn(M2, 0, B); // refreshed at 999
  c.advance(1);
  t.equal(m.lookup(M1, 0), undefined, 'gone at exactly ageMs');
  t.equal(m.lookup(M2, 0), B, 'the refreshed one lives on');
  t.equal(m.entries().length, 1, 'entries() lists only live ones');
  t.equal(m.expire(), 1, 'M3 expired (M1 already dropped by lookup)');
  t.equal(m.size, 1);
  t.equal(m.stats.aged, 2);
  c.advance(998); // M2 last seen 999 ms ago, learnt (last changed) 1998 ms ago
  t.equal(m.learn(M2, 0, A), 'moved', 'a live entry moves');
  c.advance(1000);
  t.equal(m.learn(M2, 0, A), 'new', 'an aged entry is relearnt, not moved');
  m.learn(M1, 0, A);
  m.learn(M3, 0, B);
  m.forget(A2);
  t.equal(m.lookup(M1, 0), undefined, 'forgotten with its member');
  t.equal(m.lookup(M2, 0), undefined);
  t.equal(m.lookup(M3, 0), B, 'other members stay');
  t.end();
});

t.test('MacTable: moves are conflicts, held within moveHoldMs, logged boundedly', (t) => {
  const c = new FakeClock();
  const { log, lines } = captureLog();
  const m = new MacTable(c, log, { moveHoldMs: 1000 });
  t.equal(m.learn(M1, 0, A), 'new');
  c.advance(100);
  t.equal(m.learn(M1, 0, B), 'held', 'too soon after learning');
  t.equal(m.lookup(M1, 0), A, 'entry unchanged');
  t.equal(lines.length, 1, 'the conflict is logged');
  t.match(lines[0], /WARN .*02:00:00:00:00:01.*held/);
  for (let i = 0; i < 50; i++) { c.advance(10); m.learn(M1, 0, 'local'); }
  t.equal(lines.length, 1, 'one warning per MAC per moveHoldMs');
  t.equal(m.stats.movesHeld, 51);
  c.advance(400); // 1000 ms since learning
  t.equal(m.learn(M1, 0, B), 'moved');
  t.equal(m.lookup(M1, 0), B);
  t.equal(lines.length, 1, 'not logged: 900 ms since the last warning');
  c.advance(999);
  t.equal(m.learn(M1, 0, 'local'), 'held', 'within moveHoldMs of the move');
  t.equal(lines.length, 2, 'logged again once moveHoldMs passed since the last warning');
  t.match(lines[1], /seen on local, was on brunet:node:/);
  c.advance(1);
  t.equal(m.learn(M1, 0, 'local'), 'moved', 'local vs remote is a move too');
  t.equal(m.lookup(M1, 0), 'local');
  t.match(m.stats, { moves: 2, movesHeld: 52, conflicts: 54, learned: 1 });

  // Many MACs flapping at once: the log stays bounded per second.
  const many = new MacTable(c, log, { moveHoldMs: 1000 });
  const before = lines.length;
  for (let i = 1; i <= 200; i++) many.learn(mac(0x020000000000 + i), 0, A);
  for (let i = 1; i <= 200; i++) many.learn(mac(0x020000000000 + i), 0, B);
  t.equal(many.stats.conflicts, 200);
  t.equal(lines.length - before, 10, 'at most 10 move warnings a second');
  c.advance(1000);
  many.learn(mac(0x020000000001), 0, B);
  t.match(lines.at(-2), /190 more MAC move warnings suppressed/, 'suppressed ones are counted');
  t.end();
});

t.test('MacTable: full table learns no new MAC until entries age', (t) => {
  const c = new FakeClock();
  const m = new MacTable(c, silentLogger, { maxEntries: 3, ageMs: 1000 });
  m.learn(M1, 0, A);
  c.advance(500);
  m.learn(M2, 0, A);
  m.learn(M3, 0, B);
  t.equal(m.learn(mac(0x020000000004), 0, B), 'full');
  t.equal(m.lookup(mac(0x020000000004), 0), undefined);
  t.equal(m.learn(M3, 0, B), 'refreshed', 'known MACs still refresh');
  t.equal(m.stats.full, 1);
  c.advance(500); // M1 aged
  t.equal(m.learn(mac(0x020000000004), 0, B), 'new', 'aged entries make room');
  t.equal(m.size, 3);
  t.equal(m.stats.aged, 1);
  t.end();
});

t.test('MacTable property: never over maxEntries, lookup never returns an entry aged ageMs', (t) => {
  const op = fc.record({
    dt: fc.integer({ min: 0, max: 400 }),
    mac: fc.integer({ min: 0, max: 12 }),
    port: fc.integer({ min: 0, max: 2 }),
    kind: fc.constantFrom('learn', 'lookup', 'expire', 'forget'),
  });
  fc.assert(fc.property(fc.array(op, { maxLength: 200 }), fc.integer({ min: 1, max: 6 }), (ops, maxEntries) => {
    const c = new FakeClock(0);
    const ageMs = 1000;
    const m = new MacTable(c, silentLogger, { maxEntries, ageMs, moveHoldMs: 300 });
    const ports: MacPort[] = ['local', A, B];
    const lastSeen = new Map<number, number>(); // a model: last learn that returned new/refreshed/moved
    for (const o of ops) {
      c.advance(o.dt);
      const f = mac(0x020000000000 + o.mac);
      if (o.kind === 'learn') {
        const r = m.learn(f, 0, ports[o.port]!);
        if (r === 'new' || r === 'refreshed' || r === 'moved') lastSeen.set(o.mac, c.now());
        if (r === 'full' && m.entries().length !== maxEntries) return false; // full only of live entries
      } else if (o.kind === 'lookup') {
        const p = m.lookup(f, 0);
        if (p !== undefined && !(c.now() - lastSeen.get(o.mac)! < ageMs)) return false;
      } else if (o.kind === 'expire') {
        m.expire();
      } else {
        m.forget(B);
      }
      if (m.size > maxEntries) return false;
      if (m.entries().some((e) => e.ageMs >= ageMs)) return false;
    }
    return true;
  }));
  t.end();
});

t.test('FloodLimiter: burst, refill, limited count, per source', (t) => {
  const c = new FakeClock();
  const f = new FloodLimiter(c, { perSecond: 10, burst: 5 });
  const frame = new Uint8Array(14);
  frame.set(BROADCAST_MAC, 0); frame.set(M1, 6);
  let ok = 0;
  for (let i = 0; i < 8; i++) if (f.allow(frame, 6)) ok++;
  t.equal(ok, 5, 'a burst of 5');
  t.same(f.stats, { flooded: 5, limited: 3 });
  t.ok(f.allow(M2, 0), 'another source has its own bucket');
  c.advance(99);
  t.notOk(f.allow(frame, 6), 'not yet a token after 99 ms at 10/s');
  c.advance(1);
  t.ok(f.allow(frame, 6), 'one token after 100 ms');
  t.notOk(f.allow(frame, 6));
  c.advance(60_000);
  ok = 0;
  for (let i = 0; i < 20; i++) if (f.allow(frame, 6)) ok++;
  t.equal(ok, 5, 'refill is capped at burst');
  t.same(f.stats, { flooded: 12, limited: 20 });
  t.end();
});

t.test('FloodLimiter: at most maxSources buckets, least recently used evicted', (t) => {
  const c = new FakeClock();
  const f = new FloodLimiter(c, { perSecond: 1, burst: 1, maxSources: 3 });
  t.ok(f.allow(M1, 0)); t.ok(f.allow(M2, 0)); t.ok(f.allow(M3, 0));
  t.notOk(f.allow(M1, 0), 'M1 empty, and now the most recently used');
  t.ok(f.allow(mac(0x020000000004), 0), 'a fourth source evicts the idlest (M2)');
  t.equal(f.size, 3);
  t.notOk(f.allow(M1, 0), 'M1 kept its empty bucket');
  t.ok(f.allow(M2, 0), 'M2 was evicted and starts again full');
  for (let i = 0; i < 100; i++) f.allow(mac(0x020000001000 + i), 0);
  t.equal(f.size, 3, 'bounded');
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 300 }), fc.integer({ min: 1, max: 8 }), (srcs, max) => {
    const g = new FloodLimiter(c, { maxSources: max });
    for (const s of srcs) { g.allow(mac(0x020000000000 + s), 0); if (g.size > max) return false; }
    return g.stats.flooded + g.stats.limited === srcs.length;
  }));
  t.end();
});

const IP_REQ = parseIp('10.0.0.1'); // the asker on our bridge
const IP_REM = parseIp('10.0.0.2'); // a host behind member A
const IP_LOC = parseIp('10.0.0.3'); // another host on our bridge

t.test('ArpCache: learn and answer from a member', (t) => {
  const c = new FakeClock();
  const a = new ArpCache(c);
  a.learn(buildArp(ARP_REPLY, M1, M2, IP_REM, M1, IP_REQ), A); // reply from behind A
  t.same(a.entries(), [{ ip: '10.0.0.2', mac: macToString(M2), port: A.key, ageMs: 0 }]);
  c.advance(10);
  const reply = a.answer(buildArpRequest(M1, IP_REQ, IP_REM));
  t.ok(reply, 'answered locally');
  const r = decodeArp(reply!);
  t.equal(r.op, ARP_REPLY);
  t.equal(r.senderIp, IP_REM, 'sender = the target IP');
  t.same(r.senderMac, M2, 'with the learnt MAC');
  t.equal(r.targetIp, IP_REQ, 'target = the requester');
  t.same(r.targetMac, M1);
  t.same(reply!.subarray(0, 6), M1, 'Ethernet destination is the requester');
  t.same(reply!.subarray(6, 12), M2, 'Ethernet source is the learnt MAC');
  t.equal(a.stats.localAnswers, 1);
  t.equal(a.answer(buildArpRequest(M1, IP_REQ, parseIp('10.0.0.99'))), undefined, 'unknown target');
  t.equal(a.stats.learned, 1);
  a.learn(buildArpRequest(M2, IP_REM, IP_REQ), A);
  t.equal(a.stats.refreshed, 1, 'a request teaches its sender too');
  a.learn(buildArpRequest(M3, IP_REM, IP_REQ), B);
  t.same(a.entries()[0], { ip: '10.0.0.2', mac: macToString(M3), port: B.key, ageMs: 0 }, 'latest binding wins');
  t.equal(a.stats.learned, 2);
  t.end();
});

t.test('ArpCache: no answer for local, aged, probe, gratuitous; ignores junk', (t) => {
  const c = new FakeClock();
  const a = new ArpCache(c, { ageMs: 1000 });
  a.learn(buildArpRequest(M3, IP_LOC, IP_REQ), 'local');
  t.equal(a.answer(buildArpRequest(M1, IP_REQ, IP_LOC)), undefined, 'the local host answers for itself');
  a.learn(buildArpRequest(M2, IP_REM, IP_REQ), A);
  t.equal(a.answer(buildArpRequest(M1, 0, IP_REM)), undefined, 'probe (sender 0.0.0.0)');
  t.equal(a.answer(buildArpRequest(M2, IP_REM, IP_REM)), undefined, 'gratuitous');
  t.equal(a.answer(buildArp(ARP_REPLY, M2, M1, IP_REQ, M2, IP_REM)), undefined, 'a reply is not a question');
  t.equal(a.answer(buildArpRequest(parseMac('01:00:00:00:00:01'), IP_REQ, IP_REM)), undefined, 'group sender MAC');
  c.advance(999);
  t.ok(a.answer(buildArpRequest(M1, IP_REQ, IP_REM)), 'fresh at ageMs - 1');
  c.advance(1);
  t.equal(a.answer(buildArpRequest(M1, IP_REQ, IP_REM)), undefined, 'aged at exactly ageMs');
  t.equal(a.stats.localAnswers, 1);
  t.equal(a.stats.aged, 1);
  t.equal(a.expire(), 1, 'the local entry aged too');
  t.equal(a.size, 0);

  // Junk never throws and teaches nothing.
  const udp = buildUdpFrame({ srcMac: M1, dstMac: M2, srcIp: IP_REQ, dstIp: IP_REM, srcPort: 1, dstPort: 2, payload: new Uint8Array(30) });
  const badHtype = buildArpRequest(M1, IP_REQ, IP_REM); badHtype[15] = 6;
  const badOp = buildArp(7, BROADCAST_MAC, M1, IP_REQ, ZERO_MAC, IP_REM);
  for (const f of [udp, badHtype, badOp, buildArpRequest(M1, 0, IP_REM), buildArpRequest(ZERO_MAC, IP_REQ, IP_REM),
    buildArpRequest(M1, IP_REQ, IP_REM).subarray(0, 41), new Uint8Array(0)]) {
    t.doesNotThrow(() => a.learn(f, A));
    t.equal(a.answer(f), undefined);
  }
  t.equal(a.size, 0, 'nothing learnt from junk, probes or a zero MAC');
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (f) => { a.learn(f, A); a.answer(f); return a.size <= 4096; }));
  t.end();
});

t.test('ArpCache property: bounded, full only of live entries, never answers from an aged entry', (t) => {
  const op = fc.record({
    dt: fc.integer({ min: 0, max: 400 }),
    ip: fc.integer({ min: 1, max: 10 }),
    port: fc.integer({ min: 0, max: 2 }),
    kind: fc.constantFrom('learn', 'answer', 'expire', 'forget'),
  });
  fc.assert(fc.property(fc.array(op, { maxLength: 200 }), fc.integer({ min: 1, max: 5 }), (ops, maxEntries) => {
    const c = new FakeClock(0);
    const ageMs = 1000;
    const a = new ArpCache(c, { maxEntries, ageMs });
    const ports: MacPort[] = ['local', A, B];
    const base = parseIp('10.1.0.0');
    for (const o of ops) {
      c.advance(o.dt);
      if (o.kind === 'learn') {
        const full = a.stats.full;
        a.learn(buildArpRequest(mac(0x020000000000 + o.ip), base + o.ip, IP_REQ), ports[o.port]!);
        if (a.stats.full > full && a.entries().length !== maxEntries) return false;
      } else if (o.kind === 'answer') {
        const live = a.entries().find((e) => e.ip === ipToString(base + o.ip));
        const r = a.answer(buildArpRequest(M1, IP_REQ, base + o.ip));
        if ((r !== undefined) !== (live !== undefined && live.port !== 'local')) return false;
      } else if (o.kind === 'expire') {
        a.expire();
      } else {
        a.forget(B);
      }
      if (a.size > maxEntries || a.entries().some((e) => e.ageMs >= ageMs)) return false;
    }
    return true;
  }));
  t.end();
});

t.test('ArpCache: forget, full, entries', (t) => {
  const c = new FakeClock();
  const a = new ArpCache(c, { maxEntries: 2, ageMs: 1000 });
  a.learn(buildArpRequest(M1, IP_REQ, IP_REM), A);
  c.advance(500);
  a.learn(buildArpRequest(M2, IP_REM, IP_REQ), B);
  a.learn(buildArpRequest(M3, IP_LOC, IP_REQ), 'local');
  t.equal(a.stats.full, 1, 'no room for a third');
  t.same(a.entries().map((e) => [e.ip, e.ageMs]), [['10.0.0.1', 500], ['10.0.0.2', 0]]);
  c.advance(500);
  a.learn(buildArpRequest(M3, IP_LOC, IP_REQ), 'local');
  t.same(a.entries().map((e) => e.ip), ['10.0.0.2', '10.0.0.3'], 'the aged one made room');
  a.forget(B);
  t.same(a.entries().map((e) => e.port), ['local'], 'entries behind B went');
  t.equal(ipToString(IP_LOC), '10.0.0.3');
  t.end();
});

t.test('bad options are refused', (t) => {
  const c = new FakeClock();
  t.throws(() => new MacTable(c, silentLogger, { maxEntries: 0 }), RangeError);
  t.throws(() => new MacTable(c, silentLogger, { ageMs: 0 }), RangeError);
  t.throws(() => new FloodLimiter(c, { perSecond: 0 }), RangeError);
  t.throws(() => new FloodLimiter(c, { maxSources: 1.5 }), RangeError);
  t.throws(() => new ArpCache(c, { maxEntries: -1 }), RangeError);
  t.end();
});
