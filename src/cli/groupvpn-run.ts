// `groupvpn run` (and `socialvpn run`): the VPN in the foreground (systemd runs this; `groupvpn start` runs it in
// the background). Order matters for clear failures: the TAP and the get_state port are
// taken first (root? port free? bridge present? no running instance holding the same TAP,
// ports or state directory?), then the node joins the ring, and only then does the mode start
// (vpn-modes.ts): router mode claims its IP and puts it on the TAP; switch mode brings the
// TAP up in its bridge.
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { IpopConfig } from '../config/ipop-config.js';
import type { SocialVpnConfig } from '../config/socialvpn-config.js';
import { loadIpopConfig } from '../config/ipop-config.js';
import { ConfigError, loadNodeConfig, type NodeConfig } from '../config/node-config.js';
import { SecureEdgeListener } from '../edge/secure-listener.js';
import { UdpEdgeListener } from '../transport/udp.js';
import type { EdgeListener } from '../transport/edge.js';
import type { Logger } from '../util/log.js';
import { GetStateServer } from '../vpn/get-state.js';
import { bridgeProblem, detachFromBridge } from '../vpn/bridge.js';
import { addVpnMetrics } from '../vpn/metrics.js';
import { vpnMtu } from '../vpn/mtu.js';
import { FRAME_ROOM } from '../vpn/frame-path.js';
import { TapDevice, tapUnavailableReason } from '../vpn/tap.js';
import { underlayInterface, type Underlay } from '../vpn/underlay.js';
import { holdingsOf, registerInstance } from './instances.js';
import { stateDirFor } from './state-dir.js';
import { JoinFailures } from './join-failure.js';
import { saveNodeAddress, startOverlay, type Overlay } from './overlay.js';
import { claimPidFile, releasePidFile } from './pid-file.js';
import type { RunningVpn } from './vpn-modes.js';
import type { VpnProgram } from './vpn-program.js';

export interface RunOptions { config: string; ipop?: string; stateDir?: string; joinTimeoutMs: number; log: Logger }

/** The files read: the node config, the VPN section (SocialVPN's is turned into the same shape) and the state directory. */
export interface Loaded { cfg: NodeConfig; ipop: IpopConfig; stateDir: string; social?: SocialVpnConfig }

/** Reads and checks everything `run`, `start`, `stop` and `status` need from the files. */
export function loadVpnConfig(config: string, ipopFile?: string, stateDir?: string): Loaded {
  const cfg = loadNodeConfig(config);
  const ipop = ipopFile ? loadIpopConfig(ipopFile) : cfg.ipop;
  if (!ipop) throw new ConfigError('IpopConfig', `${config} has no <IpopConfig> section (or give Brunet's ipop.config with --ipop FILE)`);
  if (!cfg.security.enabled) throw new ConfigError('Security/Enabled', 'the VPN needs security on: IP address claims are signed with the node key');
  if (ipop.dhcpConfigFile) ipop.dhcpConfigFile = resolve(dirname(resolve(ipopFile ?? config)), ipop.dhcpConfigFile);
  return { cfg, ipop, stateDir: stateDirFor(config, stateDir) };
}


type Phase = 'opening the TAP' | 'joining the ring' | 'claiming the address' | 'ready' | 'stopping';

/** Starts everything; resolves with a stop function once the VPN is ready. */
export async function runVpn(p: VpnProgram, o: RunOptions): Promise<() => Promise<void>> {
  const loaded = p.load(o.config, o.ipop, o.stateDir);
  const { cfg, ipop, stateDir } = loaded;
  for (const w of ipop.ignored) o.log.warn(`IpopConfig/${w} is not supported and is ignored`);
  const why = tapUnavailableReason();
  if (why) throw new Error(`cannot create the TAP device ${ipop.device}: ${why}`);
  const badBridge = ipop.bridge && bridgeProblem(ipop.bridge);
  if (badBridge) throw new Error(badBridge);
  // Refuses to take what a running instance holds (TAP, ports, state directory).
  const unregister = registerInstance(holdingsOf(cfg, ipop, { config: o.config, ipopFile: o.ipop, stateDir }));
  let self;
  try {
    mkdirSync(stateDir, { recursive: true });
    self = claimPidFile(stateDir, ipop.device);
  } catch (e) { unregister(); throw e; }
  const { mtu, underlay } = tapMtu(cfg, ipop, o.log);

  let phase: Phase = 'opening the TAP';
  let vpn: RunningVpn | undefined;
  let overlay: Overlay | undefined;
  let getState: GetStateServer | undefined;
  let tap: TapDevice;
  try { tap = TapDevice.open({ name: ipop.device, mtu, offload: ipop.offload, room: ipop.fastPath ? FRAME_ROOM : undefined }); } catch (e) {
    releasePidFile(stateDir, self);
    unregister();
    throw e;
  }
  const cleanup = async () => {
    phase = 'stopping';
    vpn?.stop();
    if (ipop.bridge) { try { detachFromBridge(ipop.bridge, tap.name); } catch (e) { o.log.warn((e as Error).message); } }
    tap.close();
    getState?.close();
    await overlay?.stop().catch(() => {});
    releasePidFile(stateDir, self);
    unregister();
  };
  try {
    const status = () => ({
      state: phase === 'ready' ? 'ready' : phase === 'stopping' ? 'stopping' : 'starting', phase, pid: process.pid,
      namespace: ipop.namespace, mode: ipop.mode, device: tap.name, mtu, underlay: underlay.name ?? null, ...(ipop.bridge ? { bridge: ipop.bridge } : {}), node: overlay?.nodes[0]?.address.key ?? null,
      ring: overlay?.nodes[0]?.status ?? 'offline', connections: overlay ? [...overlay.nodes[0]!.table.all()].length : 0,
      onDemand: ipop.onDemand.enabled, offload: tap.offload, fastPath: tap.room !== undefined, ...(vpn?.native ? { nativeFlows: vpn.native() } : {}),
      ...(vpn && overlay ? { traffic: trafficOf(vpn, overlay.nodes[0]!.listeners) } : {}),
    });
    if (ipop.getStatePort) {
      getState = new GetStateServer(() => vpn?.view, ipop.getStatePort, status);
      await getState.start();
    }
    phase = 'joining the ring';
    // The overlay must never run over the VPN it carries: the TAP's addresses are not advertised.
    const failures = new JoinFailures(o.log);
    // The node address goes into the config only once the VPN is ready (saveNodeAddress below).
    overlay = await startOverlay(cfg, { count: 1, log: failures.log, writeAddress: false, ignoreDevices: [tap.name, ...ipop.networkIgnoreList], fastPath: ipop.fastPath });
    const node = overlay.nodes[0]!, dht = overlay.dhts[0]!;
    const tapStats = () => { try { return tap.stats; } catch { return undefined; } };
    if (overlay.server?.metrics) addVpnMetrics(overlay.server.metrics.registry, () => vpn?.stats, tapStats);
    // Without RemoteTAs this node starts a new overlay: there is no ring to wait for.
    if (cfg.remoteTAs.length === 0) o.log.warn('no RemoteTAs: this node starts a new overlay on its own');
    else await waitJoined(() => node.status === 'connected', o.joinTimeoutMs, cfg, failures);
    phase = 'claiming the address';
    const ctx = { node, dht, ipop, tap, mtu, stateDir, leaseFile: join(stateDir, 'lease'), log: o.log };
    vpn = await p.startMode(ctx, loaded);
    overlay.server?.web.setVpn(() => vpn?.view.status());
    saveNodeAddress(cfg, node.address, o.log);
    phase = 'ready';
    o.log.info(`${p.name} ready: ${vpn.summary}, node ${node.address.key}, namespace ${ipop.namespace}`);
  } catch (e) {
    await cleanup();
    throw e;
  }
  return cleanup;
}

/**
 * The TAP's MTU: IpopConfig/MTU, or (0) derived from the underlay interface the overlay uses;
 * `underlay` is that interface, or why it is unknown (1500 is assumed then).
 */
function tapMtu(cfg: NodeConfig, ipop: IpopConfig, log: Logger): { mtu: number; underlay: Underlay } {
  const underlay = underlayInterface(cfg);
  const mtu = vpnMtu(ipop.mtu, underlay.name === undefined ? undefined : underlay);
  if (ipop.mtu) log.info(`TAP mtu ${mtu} (IpopConfig/MTU)`);
  else if (underlay.name === undefined) log.info(`underlay unknown (${underlay.reason}): assuming mtu 1500 → TAP mtu ${mtu}`);
  else log.info(`underlay ${underlay.name} mtu ${underlay.mtu} (${underlay.via}) → TAP mtu ${mtu}`);
  return { mtu, underlay };
}

/**
 * Counters `groupvpn status` shows: frames each way, how many crossed as offloaded
 * super-packets, and the UDP edges' fragment repairs (requests, fragments resent, messages lost).
 */
function trafficOf(v: RunningVpn, listeners: readonly EdgeListener[]): Record<string, number> {
  const s = v.stats;
  const udp = listeners.map((l) => (l instanceof SecureEdgeListener ? l.inner : l)).filter((l) => l instanceof UdpEdgeListener);
  const sum = (k: 'fragmentedOut' | 'fragmentRequests' | 'fragmentsResent' | 'fragmentedLost') => udp.reduce((n, l) => n + l.stats[k], 0);
  return {
    txFrames: s.txFrames, txBytes: s.txBytes, txOffload: s.txOffload, txInPlace: s.txInPlace, rxFrames: s.rxFrames, rxBytes: s.rxBytes, rxOffload: s.rxOffload,
    fragmentedOut: sum('fragmentedOut'), fragmentRequests: sum('fragmentRequests'), fragmentsResent: sum('fragmentsResent'), fragmentedLost: sum('fragmentedLost'),
  };
}

async function waitJoined(joined: () => boolean, ms: number, cfg: NodeConfig, failures: JoinFailures): Promise<void> {
  const end = Date.now() + ms;
  while (!joined()) {
    if (Date.now() > end) {
      const boot = cfg.remoteTAs.map((t) => t.key).join(', ');
      throw new Error(`did not join the ring within ${Math.round(ms / 1000)} s: ${failures.cause() ?? `no bootstrap answered (RemoteTAs: ${boot}); are they running and reachable?`}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
