// IpopConfig/Bridge (switch mode): the TAP joins an existing Linux bridge as a port, next to
// the interfaces of the hosts it connects, and leaves it at stop. The bridge is checked before
// anything starts; ports with a larger MTU than the TAP's are warned about, since their larger
// frames cannot cross the overlay. Attaching uses the TAP addon's SIOCBRADDIF/SIOCBRDELIF.
import { existsSync, readdirSync } from 'node:fs';
import { nativeLinks } from './tap.js';
import { interfaceMtu, readSys, type ReadSys } from './underlay.js';

export class BridgeError extends Error {
  override name = 'BridgeError';
}

/** Why `bridge` cannot take the TAP (missing, or not a bridge), or undefined when it can. */
export function bridgeProblem(bridge: string, exists: (path: string) => boolean = existsSync): string | undefined {
  if (!exists(`/sys/class/net/${bridge}`)) return `bridge ${bridge} does not exist (create it: ip link add ${bridge} type bridge)`;
  if (!exists(`/sys/class/net/${bridge}/bridge`)) return `${bridge} is not a bridge (ip -d link show ${bridge} says what it is); name a bridge in IpopConfig/Bridge`;
  return undefined;
}

/** The bridge's ports (/sys/class/net/<bridge>/brif). */
export function bridgePorts(bridge: string, list: (dir: string) => string[] = listDir): string[] {
  return list(`/sys/class/net/${bridge}/brif`).sort();
}

const listDir = (dir: string) => { try { return readdirSync(dir); } catch { return []; } };

/** One warning per other port of `bridge` whose MTU exceeds the TAP's. */
export function bridgeMtuWarnings(bridge: string, tap: string, tapMtu: number, read: ReadSys = readSys, list: (dir: string) => string[] = listDir): string[] {
  return bridgePorts(bridge, list).filter((p) => p !== tap).flatMap((p) => {
    const mtu = interfaceMtu(p, read);
    return mtu !== undefined && mtu > tapMtu
      ? [`bridge ${bridge}: port ${p} has mtu ${mtu} > TAP mtu ${tapMtu}: frames larger than ${tapMtu} from it are dropped; set its mtu to ${tapMtu}`]
      : [];
  });
}

/** Makes `port` (an interface that is up or about to be) a port of `bridge`, and brings it up. */
export function attachToBridge(bridge: string, port: string): void {
  const why = bridgeProblem(bridge);
  if (why) throw new BridgeError(why);
  const n = nativeLinks();
  try {
    n.bridgePort(bridge, port, true);
    n.linkUp(port);
  } catch (e) {
    throw new BridgeError(`cannot attach ${port} to bridge ${bridge}: ${(e as Error).message}`);
  }
}

/** Takes `port` out of `bridge`; nothing happens if it is not (or no longer) a port of it. */
export function detachFromBridge(bridge: string, port: string): void {
  if (!bridgePorts(bridge).includes(port)) return;
  try { nativeLinks().bridgePort(bridge, port, false); } catch (e) {
    throw new BridgeError(`cannot detach ${port} from bridge ${bridge}: ${(e as Error).message}`);
  }
}
