// SocialVPN's local address book: every friend DEVICE (keyed by its node address string) gets a
// stable IPv4 address in this device's own private subnet (SocialVpnConfig/Subnet, e.g.
// 172.31.0.0/16). The network address (.0) and the broadcast address are never handed out,
// and the device itself is network + 1 (.1).
//
// Allocation: a device's first choice is a hash of its node address (SHA-1, taken modulo the
// number of assignable addresses), then the next free address upward, wrapping. So with few
// friends in a big subnet a device usually gets the same address again even if this file is
// lost, and on each of a user's devices (which share the user key) a friend device tends to get
// the same address. Once handed out, an address stays with its device until release(): a friend
// removed from the list keeps it, so a friend added back keeps its address.
//
// Persistence: `addresses.json` in the state directory, rewritten atomically (temp file +
// rename) before ipFor() returns a new address, so addresses survive restarts. A missing file
// is an empty book; an unreadable or malformed one is an AddressBookError (never silently
// replaced). Entries outside the configured subnet (it changed), or on .0/.1/broadcast, are
// dropped on load and counted in `dropped`; the file is rewritten at the next change.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../../util/log.js';
import { writeFileAtomic } from '../../util/secret-file.js';
import { ipToString, parseIp, prefixToMask } from '../frames.js';

export const ADDRESS_BOOK_FILE = 'addresses.json';
const FORMAT_VERSION = 1;
const MAX_KEY = 256;
const MAX_LABEL = 255;

/** Bad subnet, unreadable or malformed file, full subnet, or a failed save. */
export class AddressBookError extends Error { override name = 'AddressBookError'; }

export interface AddressEntry {
  /** The friend device's node address, as a string. */
  node: string;
  /** Its local IPv4 address (u32). */
  ip: number;
  /** For people reading the file or a status listing, e.g. "laptop.alice". */
  label: string;
}

interface FileEntry { node: string; ip: string; label: string }
interface FileShape { version: number; subnet: string; entries: FileEntry[] }

/** A parsed "a.b.c.d/n" that has room for the device and at least one friend. */
export interface Subnet { network: number; prefix: number; mask: number; text: string }

export function parseSubnet(cidr: string): Subnet {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(cidr.trim());
  if (m === null) throw new AddressBookError(`subnet ${JSON.stringify(cidr)} is not a.b.c.d/n`);
  let network: number, mask: number;
  const prefix = Number(m[2]);
  try {
    network = parseIp(m[1]!);
    mask = prefixToMask(prefix);
  } catch (e) {
    throw new AddressBookError(`subnet ${JSON.stringify(cidr)}: ${(e as Error).message}`);
  }
  if (prefix > 30) throw new AddressBookError(`subnet ${cidr} is too small: /${prefix} leaves no address for a friend (at most /30)`);
  if ((network & ~mask) !== 0) {
    throw new AddressBookError(`subnet ${cidr} is not a network address (did you mean ${ipToString((network & mask) >>> 0)}/${prefix}?)`);
  }
  return { network, prefix, mask, text: `${ipToString(network)}/${prefix}` };
}

export class AddressBook {
  /** This device's own address in the subnet (network + 1). */
  readonly selfIp: number;
  /** How many addresses friends can get (the subnet minus .0, .1 and broadcast). */
  readonly capacity: number;
  private readonly byNode = new Map<string, AddressEntry>();
  private readonly byIp = new Map<number, AddressEntry>();

  private constructor(
    readonly file: string,
    readonly subnet: Subnet,
    /** Entries in the file that were dropped on load (outside the subnet, or reserved). */
    readonly dropped: number,
  ) {
    this.selfIp = (subnet.network + 1) >>> 0;
    this.capacity = 2 ** (32 - subnet.prefix) - 3;
  }

  /** Reads `file` (missing: empty). Throws AddressBookError for a bad subnet or a malformed file. */
  static load(file: string, subnet: string, log?: Logger): AddressBook {
    const net = parseSubnet(subnet);
    let text: string | undefined;
    try { text = readFileSync(file, 'utf8'); } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new AddressBookError(`cannot read ${file}: ${(e as Error).message}`);
    }
    const entries = text === undefined ? [] : parseFile(file, text);
    const valid = entries.filter((e) => isAssignable(net, e.ip));
    const book = new AddressBook(file, net, entries.length - valid.length);
    for (const e of valid) {
      if (book.byNode.has(e.node)) throw new AddressBookError(`${file} is corrupt: node ${e.node} is listed twice`);
      if (book.byIp.has(e.ip)) throw new AddressBookError(`${file} is corrupt: ${ipToString(e.ip)} is listed twice`);
      book.add(e);
    }
    if (book.dropped > 0) log?.warn(`${file}: dropped ${book.dropped} address(es) outside subnet ${net.text}; those friends get new ones`);
    return book;
  }

  /** The local address of friend device `node`, allocated and saved on first use. */
  ipFor(node: string, label: string): number {
    if (typeof node !== 'string' || node.length === 0 || node.length > MAX_KEY) throw new AddressBookError(`invalid node address key ${JSON.stringify(node)}`);
    if (label.length > MAX_LABEL) throw new AddressBookError(`label of ${label.length} characters is longer than ${MAX_LABEL}`);
    const known = this.byNode.get(node);
    if (known !== undefined) {
      if (known.label !== label) {
        const before = known.label;
        known.label = label;
        this.saveOrUndo(() => { known.label = before; });
      }
      return known.ip;
    }
    if (this.byNode.size >= this.capacity) {
      throw new AddressBookError(`subnet ${this.subnet.text} is full: all ${this.capacity} addresses are taken (release one, or configure a bigger Subnet)`);
    }
    const first = this.hashStart(node);
    let ip = first;
    while (this.byIp.has(ip)) ip = this.next(ip); // terminates: size < capacity
    const entry: AddressEntry = { node, ip, label };
    this.add(entry);
    this.saveOrUndo(() => this.remove(entry));
    return ip;
  }

  /** The friend device at local address `ip`, if any. */
  lookup(ip: number): string | undefined { return this.byIp.get(ip >>> 0)?.node; }

  /** The local address of `node`, if it has one (allocates nothing). */
  ipOf(node: string): number | undefined { return this.byNode.get(node)?.ip; }

  /** All entries, in address order (copies). */
  entries(): AddressEntry[] {
    return [...this.byNode.values()].sort((a, b) => a.ip - b.ip).map((e) => ({ ...e }));
  }

  /** Frees `node`'s address (saved at once). False if it had none. */
  release(node: string): boolean {
    const e = this.byNode.get(node);
    if (e === undefined) return false;
    this.remove(e);
    this.saveOrUndo(() => this.add(e));
    return true;
  }

  /** True for an address a friend can hold in this subnet (not .0, .1 or broadcast). */
  isAssignable(ip: number): boolean { return isAssignable(this.subnet, ip >>> 0); }

  private add(e: AddressEntry): void { this.byNode.set(e.node, e); this.byIp.set(e.ip, e); }
  private remove(e: AddressEntry): void { this.byNode.delete(e.node); this.byIp.delete(e.ip); }

  /** The first address tried for `node`: a hash of it over the assignable range. */
  private hashStart(node: string): number {
    const h = createHash('sha1').update(node).digest().readUInt32BE(0);
    return (this.subnet.network + 2 + (h % this.capacity)) >>> 0;
  }

  /** The next assignable address after `ip`, wrapping from the last to .2. */
  private next(ip: number): number {
    const n = (ip + 1) >>> 0;
    return n - this.subnet.network - 2 >= this.capacity ? (this.subnet.network + 2) >>> 0 : n;
  }

  private saveOrUndo(undo: () => void): void {
    const data: FileShape = {
      version: FORMAT_VERSION,
      subnet: this.subnet.text,
      entries: this.entries().map((e) => ({ node: e.node, ip: ipToString(e.ip), label: e.label })),
    };
    try {
      mkdirSync(dirname(this.file), { recursive: true, mode: 0o700 });
      writeFileAtomic(this.file, JSON.stringify(data, null, 2) + '\n', 0o600);
    } catch (e) {
      undo();
      throw new AddressBookError(`cannot save ${this.file}: ${(e as Error).message}`);
    }
  }
}

function isAssignable(net: Subnet, ip: number): boolean {
  const host = (ip - net.network) >>> 0;
  return ((ip ^ net.network) & net.mask) === 0 && host >= 2 && host < 2 ** (32 - net.prefix) - 1;
}

function parseFile(file: string, text: string): AddressEntry[] {
  const bad = (why: string): AddressBookError => new AddressBookError(`${file} is corrupt: ${why} (fix or delete it; friends then get new addresses)`);
  let v: unknown;
  try { v = JSON.parse(text); } catch (e) { throw bad((e as Error).message); }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('not a JSON object');
  const o = v as Partial<FileShape>;
  if (o.version !== FORMAT_VERSION) throw bad(`version ${JSON.stringify(o.version)}, expected ${FORMAT_VERSION}`);
  if (typeof o.subnet !== 'string') throw bad('no "subnet"');
  if (!Array.isArray(o.entries)) throw bad('no "entries" list');
  return o.entries.map((e: unknown, i) => {
    const f = e as Partial<FileEntry> | null;
    if (typeof f !== 'object' || f === null || typeof f.node !== 'string' || f.node.length === 0 || f.node.length > MAX_KEY
      || typeof f.ip !== 'string' || typeof f.label !== 'string' || f.label.length > MAX_LABEL) {
      throw bad(`entry ${i} is not {"node", "ip", "label"}`);
    }
    let ip: number;
    try { ip = parseIp(f.ip); } catch (err) { throw bad(`entry ${i}: ${(err as Error).message}`); }
    return { node: f.node, ip, label: f.label };
  });
}
