// The devices of our friends, and whether each one may exchange VPN traffic with us.
//
// A device is known from its user's discovery records (discovery.ts) or from a hello that
// arrived over the connection to it. Traffic flows only while the friendship is mutual and
// proven on that connection:
//   verified: its hello came over the connection to the node its certificate names, the
//             certificate is signed by a user we list, and it has not expired;
//   accepted: its latest hello says we are its friend (it lists our user and checked our certificate).
// Each side decides from its own friend list, so if either side removes the other, the
// remover drops at once and tells the other with a hello whose friend flag is clear.
import type { Address } from '../../address/address.js';
import type { Clock } from '../../util/clock.js';
import { decodeHello, encodeHello, FLAG_ANSWER, FLAG_FRIEND, SocialWireError } from './wire.js';

/** What a verified device certificate says. */
export interface CertInfo { userKey: Uint8Array; userName: string; deviceName: string; node: Address; expiresAt: number }

/** Checks a device certificate: what it says, or why it is refused. */
export type CertCheck = (cert: Uint8Array, nowMs: number) => CertInfo | string;

/** Our friend list as the data path sees it: the alias of a user we list, by public key. */
export type FriendOf = (userKey: Uint8Array) => string | undefined;

export interface FriendDevice {
  node: Address;
  alias: string;
  userKey: Uint8Array;
  deviceName: string;
  expiresAt: number;
  /** Our local IP for it (AddressBook). */
  localIp: number;
  verified: boolean;
  accepted: boolean;
  /** Its own address (its TAP's), and its local IP for us, from its hello. */
  ownIp: number;
  viewOfUs: number;
  /** When its last hello arrived (0: never). */
  lastHello: number;
  lastHelloSent: number;
  /** When the friendship was last proven both ways (0: never): `<user>.svpn` names the latest. */
  since: number;
}

export interface FriendDevicesComponents {
  clock: Clock;
  check: CertCheck;
  friendOf: FriendOf;
  /** Our local IP for a device (allocated once, kept across restarts); may throw (a full subnet). */
  localIpFor(node: Address, label: string): number;
  /** Sends a hello over the connection to `node`; false when there is none. */
  sendControl(node: Address, data: Uint8Array): boolean;
  /** Our own certificate (renewed by the caller) and TAP address. */
  ownCert(): Uint8Array;
  ownIp: number;
}

/** A device whose hellos stopped this long ago is offline. */
export const HELLO_TIMEOUT_MS = 35_000;
/** Hellos are repeated this often to every friend device we have a connection to. */
export const HELLO_EVERY_MS = 10_000;
/** Until the friendship is proven both ways, hellos are retried this often. */
const RETRY_MS = 2000;

export class FriendDevices {
  /** Hellos in and out; refused: malformed, a bad certificate, not a friend's, naming another node; no local IP left for a device. */
  readonly stats = { hellosIn: 0, hellosOut: 0, badHello: 0, badCert: 0, notFriend: 0, wrongNode: 0, noLocalIp: 0 };
  private devices = new Map<string, FriendDevice>();

  constructor(private readonly c: FriendDevicesComponents) {}

  get(node: Address): FriendDevice | undefined { return this.devices.get(node.key); }
  byKey(nodeKey: string): FriendDevice | undefined { return this.devices.get(nodeKey); }
  all(): FriendDevice[] { return [...this.devices.values()]; }

  /** May exchange traffic now: mutual, proven on the connection, not expired, and still listed by us. */
  mutual(d: FriendDevice): boolean {
    const now = this.c.clock.now();
    return d.verified && d.accepted && now < d.expiresAt && now - d.lastHello < HELLO_TIMEOUT_MS && this.c.friendOf(d.userKey) !== undefined;
  }

  /** A device found in a friend's discovery records: remembered, so we connect and say hello. */
  discovered(cert: Uint8Array, claimer: Address): FriendDevice | undefined {
    const info = this.c.check(cert, this.c.clock.now());
    if (typeof info === 'string' || !info.node.equals(claimer)) return undefined;
    const alias = this.c.friendOf(info.userKey);
    if (alias === undefined) return undefined;
    return this.upsert(info, alias);
  }

  /** A hello arrived over the connection to `from`. */
  onHello(data: Uint8Array, from: Address): void {
    let h;
    try { h = decodeHello(data); } catch (e) {
      if (!(e instanceof SocialWireError)) throw e;
      this.stats.badHello++;
      return;
    }
    const now = this.c.clock.now();
    const info = this.c.check(h.cert, now);
    if (typeof info === 'string') { this.stats.badCert++; return; }
    // The certificate must name the node that proved its address on this connection.
    if (!info.node.equals(from)) { this.stats.wrongNode++; return; }
    const alias = this.c.friendOf(info.userKey);
    if (alias === undefined) { this.stats.notFriend++; return; }
    const d = this.upsert(info, alias);
    if (!d) return;
    this.stats.hellosIn++;
    const wasMutual = this.mutual(d);
    d.verified = true;
    d.accepted = (h.flags & FLAG_FRIEND) !== 0 && h.yourIp !== 0;
    d.ownIp = h.ownIp;
    d.viewOfUs = h.yourIp;
    d.lastHello = now;
    if (!wasMutual && this.mutual(d)) d.since = now;
    // Answer when asked, or when the peer does not know yet that we accept it.
    if ((h.flags & FLAG_ANSWER) !== 0 || !d.accepted || wasMutual !== this.mutual(d)) this.hello(d, !d.accepted);
  }

  /** Says hello to a device over the connection to it (asking for an answer). */
  hello(d: FriendDevice, askAnswer = true): void {
    const friend = this.c.friendOf(d.userKey) !== undefined && d.verified;
    const data = encodeHello({
      flags: (friend ? FLAG_FRIEND : 0) | (askAnswer ? FLAG_ANSWER : 0), ownIp: this.c.ownIp, yourIp: friend ? d.localIp : 0, cert: this.c.ownCert(),
    });
    if (this.c.sendControl(d.node, data)) { this.stats.hellosOut++; d.lastHelloSent = this.c.clock.now(); }
  }

  /** Periodic: hello every device due; forget devices of users we no longer list (telling them). */
  tick(): void {
    const now = this.c.clock.now();
    for (const [key, d] of this.devices) {
      const alias = this.c.friendOf(d.userKey);
      if (alias === undefined) {
        if (d.verified) this.hello(d, false); // friend flag clear: "no longer friends"
        this.devices.delete(key);
        continue;
      }
      d.alias = alias;
      if (now - d.lastHelloSent >= HELLO_EVERY_MS || (!this.mutual(d) && now - d.lastHelloSent >= RETRY_MS)) this.hello(d, !this.mutual(d));
    }
  }

  /** The device's entry, made on first sight with a local IP; undefined when no local IP can be had (a full subnet, an unwritable address book). */
  private upsert(info: CertInfo, alias: string): FriendDevice | undefined {
    let d = this.devices.get(info.node.key);
    if (!d) {
      let localIp: number;
      try { localIp = this.c.localIpFor(info.node, `${info.deviceName}.${alias}`); } catch { this.stats.noLocalIp++; return undefined; }
      d = {
        node: info.node, alias, userKey: info.userKey, deviceName: info.deviceName, expiresAt: info.expiresAt,
        localIp, verified: false, accepted: false, ownIp: 0, viewOfUs: 0, lastHello: 0, lastHelloSent: 0, since: 0,
      };
      this.devices.set(info.node.key, d);
    }
    if (!Buffer.from(d.userKey).equals(Buffer.from(info.userKey))) {
      // The node now presents another user's certificate: what we believed no longer holds.
      d.userKey = info.userKey;
      d.verified = d.accepted = false;
      d.expiresAt = info.expiresAt;
    }
    d.alias = alias;
    d.deviceName = info.deviceName;
    d.expiresAt = Math.max(d.expiresAt, info.expiresAt);
    return d;
  }
}
