// SocialVPN's local address book (src/vpn/social/address-book.ts): stable addresses across
// reloads, never .0/.1/broadcast, a full subnet, corrupt files and a changed subnet.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseIp } from '../src/vpn/frames.js';
import { AddressBook, AddressBookError, parseSubnet } from '../src/vpn/social/address-book.js';

function scratch(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'svpn-book-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
const nodes = (n: number): string[] => Array.from({ length: n }, (_, i) => `brunet:node:${i.toString(16).padStart(40, '0')}`);

t.test('addresses are stable across a reload and persisted atomically', async (t) => {
  const file = join(scratch(t), 'state', 'addresses.json');
  const book = AddressBook.load(file, '172.31.0.0/16');
  t.equal(book.entries().length, 0, 'a missing file is an empty book');
  t.equal(book.selfIp, parseIp('172.31.0.1'));
  const ids = nodes(50);
  const ips = ids.map((id, i) => book.ipFor(id, `dev${i}.user`));
  t.equal(new Set(ips).size, 50, 'distinct addresses');
  t.same(ids.map((id) => book.ipFor(id, 'ignored-later')), ips, 'asking again gives the same address');
  t.equal(book.lookup(ips[7]!), ids[7]);
  t.equal(book.ipOf(ids[7]!), ips[7]);
  t.equal(book.ipOf('brunet:node:unknown'), undefined, 'ipOf allocates nothing');
  t.equal(book.lookup(parseIp('172.31.0.1')), undefined, 'the device itself is no friend');
  t.same(readdirSync(join(file, '..')), ['addresses.json'], 'no temp files left behind');

  const again = AddressBook.load(file, '172.31.0.0/16');
  t.same(ids.map((id) => again.ipOf(id)), ips, 'same addresses after a reload');
  t.equal(again.entries().find((e) => e.node === ids[3])?.label, 'ignored-later', 'the latest label is kept');
  t.equal(again.dropped, 0);

  // The start point is a hash of the node address: a lost file gives the same address back
  // to a device that had no collision.
  rmSync(file);
  const fresh = AddressBook.load(file, '172.31.0.0/16');
  t.equal(fresh.ipFor(ids[0]!, 'x'), ips[0], 'same address from the hash after the file is lost');

  // release() frees the address and is saved.
  t.ok(again.release(ids[1]!));
  t.notOk(again.release(ids[1]!), 'releasing twice is a no-op');
  t.equal(AddressBook.load(file, '172.31.0.0/16').ipOf(ids[1]!), undefined);
});

t.test('.0, .1 and the broadcast address are never handed out; a full subnet is an error', async (t) => {
  const file = join(scratch(t), 'addresses.json');
  const book = AddressBook.load(file, '10.5.5.0/28'); // .2 .. .14: 13 friends
  t.equal(book.capacity, 13);
  const ids = nodes(13);
  const got = ids.map((id) => book.ipFor(id, ''));
  t.same([...got].sort((a, b) => a - b), Array.from({ length: 13 }, (_, i) => parseIp(`10.5.5.${i + 2}`)), 'exactly .2 to .14');
  t.throws(() => book.ipFor('brunet:node:one-too-many', ''), AddressBookError, 'full');
  t.throws(() => book.ipFor('brunet:node:one-too-many', ''), /10\.5\.5\.0\/28 is full/);
  t.equal(book.ipFor(ids[4]!, ''), got[4], 'known devices still get theirs when full');
  book.release(ids[4]!);
  t.equal(book.ipFor('brunet:node:one-too-many', ''), got[4], 'a released address is reused');

  const tiny = AddressBook.load(join(scratch(t), 'a.json'), '192.168.9.4/30');
  t.equal(tiny.ipFor('brunet:node:x', ''), parseIp('192.168.9.6'), 'a /30 has one friend address');
  t.throws(() => tiny.ipFor('brunet:node:y', ''), AddressBookError);
});

t.test('subnets: malformed or too small ones are typed errors', async (t) => {
  for (const bad of ['172.31.0.0', '172.31.0.0/33', '172.31.0.0/31', '172.31.5.0/16', '300.1.1.0/24', 'x/24']) {
    t.throws(() => parseSubnet(bad), AddressBookError, bad);
  }
  t.throws(() => parseSubnet('172.31.5.0/16'), /did you mean 172\.31\.0\.0\/16/);
  t.equal(parseSubnet('172.31.0.0/16').text, '172.31.0.0/16');
});

t.test('a corrupt file is a typed error and is left as it is', async (t) => {
  const dir = scratch(t);
  const cases: [string, string][] = [
    ['not JSON', '{"version":1,'],
    ['not an object', '[]'],
    ['wrong version', '{"version":2,"subnet":"172.31.0.0/16","entries":[]}'],
    ['no entries', '{"version":1,"subnet":"172.31.0.0/16"}'],
    ['bad entry', '{"version":1,"subnet":"172.31.0.0/16","entries":[{"node":"a","ip":5,"label":""}]}'],
    ['bad ip', '{"version":1,"subnet":"172.31.0.0/16","entries":[{"node":"a","ip":"172.31.0.256","label":""}]}'],
    ['duplicate node', '{"version":1,"subnet":"172.31.0.0/16","entries":[{"node":"a","ip":"172.31.0.2","label":""},{"node":"a","ip":"172.31.0.3","label":""}]}'],
    ['duplicate ip', '{"version":1,"subnet":"172.31.0.0/16","entries":[{"node":"a","ip":"172.31.0.2","label":""},{"node":"b","ip":"172.31.0.2","label":""}]}'],
  ];
  for (const [name, text] of cases) {
    const file = join(dir, `${name.replace(/ /g, '-')}.json`);
    writeFileSync(file, text);
    t.throws(() => AddressBook.load(file, '172.31.0.0/16'), AddressBookError, name);
    t.equal(readFileSync(file, 'utf8'), text, `${name}: file untouched`);
  }
  t.throws(() => AddressBook.load(dir, '172.31.0.0/16'), /cannot read/, 'a directory is unreadable, not empty');
});

t.test('a changed subnet drops the entries that no longer fit, counted', async (t) => {
  const file = join(scratch(t), 'addresses.json');
  const entries = [
    { node: 'in', ip: '10.1.0.7', label: 'still fits' },
    { node: 'out', ip: '10.1.3.9', label: 'outside the new /24' },
    { node: 'self', ip: '10.1.0.1', label: 'the new self address' },
    { node: 'bcast', ip: '10.1.0.255', label: 'the new broadcast' },
  ];
  writeFileSync(file, JSON.stringify({ version: 1, subnet: '10.1.0.0/16', entries }));
  const warnings: string[] = [];
  const log = { debug() {}, info() {}, warn: (m: string) => { warnings.push(m); }, error() {}, child() { return log; } };
  const book = AddressBook.load(file, '10.1.0.0/24', log);
  t.equal(book.dropped, 3);
  t.match(warnings, [/dropped 3 address\(es\) outside subnet 10\.1\.0\.0\/24/]);
  t.same(book.entries().map((e) => e.node), ['in']);
  t.equal(book.ipOf('in'), parseIp('10.1.0.7'));
  const ip = book.ipFor('out', 'back');
  t.ok(book.isAssignable(ip), 'a dropped device gets a new address in the new subnet');
  const saved = JSON.parse(readFileSync(file, 'utf8')) as { subnet: string; entries: { node: string }[] };
  t.equal(saved.subnet, '10.1.0.0/24');
  t.same(saved.entries.map((e) => e.node).sort(), ['in', 'out'], 'the next save has only valid entries');

  const moved = AddressBook.load(file, '192.168.0.0/16');
  t.equal(moved.dropped, 2, 'a subnet elsewhere drops everything');
  t.equal(moved.entries().length, 0);
});

t.test('a failed save hands out nothing and keeps the book as it was', async (t) => {
  const dir = scratch(t);
  const file = join(dir, 'addresses.json');
  const book = AddressBook.load(file, '172.31.0.0/16');
  const ip = book.ipFor('brunet:node:a', 'a');
  // A directory where the file goes: the rename fails (for root too, unlike permissions).
  rmSync(file);
  mkdirSync(file);
  t.throws(() => book.ipFor('brunet:node:b', 'b'), /cannot save/);
  t.equal(book.ipOf('brunet:node:b'), undefined, 'not allocated');
  t.throws(() => book.ipFor('brunet:node:a', 'renamed'), AddressBookError);
  t.equal(book.entries()[0]?.label, 'a', 'label change undone');
  t.throws(() => book.release('brunet:node:a'), AddressBookError);
  t.equal(book.ipOf('brunet:node:a'), ip, 'release undone');
});
