// The names the DNS responder answers (dns-responder.ts), from the friend devices we know:
//   <device>.<user>.svpn → our local IP for that device of that friend (user = our alias for them)
//   <user>.svpn          → the user's device that came online most recently (else the one seen last)
// and the reverse (PTR) for each local IP. Names are matched case-insensitively.
import type { FriendDevice } from './friend-devices.js';

export const SVPN_DOMAIN = 'svpn';

export interface NameSource {
  all(): FriendDevice[];
  mutual(d: FriendDevice): boolean;
}

export const deviceName = (d: FriendDevice): string => `${d.deviceName}.${d.alias}.${SVPN_DOMAIN}`.toLowerCase();

export class SvpnNameTable {
  constructor(private readonly devices: NameSource) {}

  lookupA(name: string): number | undefined {
    const n = name.toLowerCase().replace(/\.$/, '');
    if (!n.endsWith(`.${SVPN_DOMAIN}`)) return undefined;
    const labels = n.slice(0, -SVPN_DOMAIN.length - 1).split('.');
    const all = this.devices.all();
    if (labels.length > 2) return undefined;
    // <device>.<user>: that device (a device that got a new node key since is another entry: the live one wins).
    const mine = all.filter((d) => d.alias.toLowerCase() === labels[labels.length - 1] && (labels.length === 1 || d.deviceName.toLowerCase() === labels[0]));
    const online = mine.filter((d) => this.devices.mutual(d));
    const pick = (ds: FriendDevice[], by: (d: FriendDevice) => number) => ds.reduce<FriendDevice | undefined>((a, d) => (!a || by(d) > by(a) ? d : a), undefined);
    return (pick(online, (d) => d.since) ?? pick(mine, (d) => d.lastHello))?.localIp;
  }

  lookupPtr(ip: number): string | undefined {
    const d = this.devices.all().find((x) => x.localIp === ip);
    return d ? deviceName(d) : undefined;
  }

  /** True for names in our domain (a miss there is NXDOMAIN, elsewhere REFUSED). */
  isOurs(name: string): boolean {
    const n = name.toLowerCase().replace(/\.$/, '');
    return n === SVPN_DOMAIN || n.endsWith(`.${SVPN_DOMAIN}`);
  }
}
