// The groupvpn instances running on this host, so a second one cannot take what a running one
// holds: its TAP, its get_state, overlay and XmlRpc ports, its switch-mode Bridge (in the same network namespace) or
// its state directory (anywhere). One JSON file per running instance in the registry directory
// ($BRUNET_TS_INSTANCES, else /run/brunet-ts/instances as root, else <tmpdir>/brunet-ts-instances),
// written at start and removed at stop. A record whose process is gone (same pid, start time
// and command line, as in pid-file.ts) is stale: ignored and removed.
import { mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { IpopConfig } from '../config/ipop-config.js';
import type { NodeConfig } from '../config/node-config.js';
import { isAlive, selfRecord, type PidRecord } from './pid-file.js';

/** What an instance holds, by its configuration. */
export interface Holdings {
  /** The config file it runs from (and the ipop.config, if separate), for messages. */
  config: string;
  stateDir: string;
  /** /proc/self/ns/net: ports and interface names are per network namespace. */
  netns: string;
  device: string;
  getStatePort: number;
  /** Fixed EdgeListener ports as 'udp/5000' (random ports, 0, cannot collide). */
  overlayPorts: string[];
  /** The XmlRpc port, 0 when off. */
  xmlRpcPort: number;
  /** Switch mode's Bridge: two members' TAPs in one bridge would loop frames between them. */
  bridge?: string;
}

export type InstanceRecord = PidRecord & Holdings;

export class InstanceCollision extends Error {
  override name = 'InstanceCollision';
}

export function registryDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['BRUNET_TS_INSTANCES']) return resolve(env['BRUNET_TS_INSTANCES']);
  return process.getuid?.() === 0 ? '/run/brunet-ts/instances' : join(tmpdir(), 'brunet-ts-instances');
}

export function currentNetns(): string {
  try { return readlinkSync('/proc/self/ns/net'); } catch { return 'unknown'; }
}

export function holdingsOf(cfg: NodeConfig, ipop: IpopConfig, o: { config: string; ipopFile?: string; stateDir: string; netns?: string }): Holdings {
  return {
    config: resolve(o.config) + (o.ipopFile ? ` (with ${resolve(o.ipopFile)})` : ''),
    stateDir: resolve(o.stateDir), netns: o.netns ?? currentNetns(), device: ipop.device, getStatePort: ipop.getStatePort,
    overlayPorts: cfg.edgeListeners.filter((l) => l.port !== 0).map((l) => `${l.type}/${l.port}`),
    xmlRpcPort: cfg.xmlRpc.enabled ? cfg.xmlRpc.port : 0,
    ...(ipop.bridge ? { bridge: ipop.bridge } : {}),
  };
}

/** The first thing `mine` would take from `other`, as one line, or undefined. */
export function collision(mine: Holdings, other: InstanceRecord): string | undefined {
  const by = `is already used by the instance running from ${other.config} (pid ${other.pid})`;
  if (mine.stateDir === other.stateDir) return `state directory ${mine.stateDir} ${by}`;
  if (mine.netns !== other.netns) return undefined;
  if (mine.device === other.device) return `TAP ${mine.device} ${by}`;
  if (mine.getStatePort !== 0 && mine.getStatePort === other.getStatePort) return `get_state port ${mine.getStatePort} ${by}`;
  const port = mine.overlayPorts.find((p) => other.overlayPorts.includes(p));
  if (port) return `overlay port ${port} ${by}`;
  if (mine.xmlRpcPort !== 0 && mine.xmlRpcPort === other.xmlRpcPort) return `control (XmlRpc) port ${mine.xmlRpcPort} ${by}`;
  if (mine.bridge !== undefined && mine.bridge === other.bridge) return `bridge ${mine.bridge} (two switch members in one bridge would loop frames) ${by}`;
  return undefined;
}

function parseRecord(text: string): InstanceRecord | undefined {
  try {
    const r = JSON.parse(text) as Partial<InstanceRecord>;
    const strings = [r.startTime, r.config, r.stateDir, r.netns, r.device];
    if (!Number.isInteger(r.pid) || strings.some((s) => typeof s !== 'string') || !Array.isArray(r.cmdline) || !Array.isArray(r.overlayPorts)
      || typeof r.getStatePort !== 'number' || typeof r.xmlRpcPort !== 'number') return undefined;
    return r as InstanceRecord;
  } catch { return undefined; }
}

/** The running instances' records; unreadable and stale ones are removed. */
export function runningInstances(dir = registryDir()): InstanceRecord[] {
  let names: string[];
  try { names = readdirSync(dir).filter((n) => n.endsWith('.json')); } catch { return []; }
  const out: InstanceRecord[] = [];
  for (const n of names) {
    let text: string;
    try { text = readFileSync(join(dir, n), 'utf8'); } catch { continue; }
    const r = parseRecord(text);
    if (r && isAlive(r)) out.push(r);
    else rmSync(join(dir, n), { force: true });
  }
  return out;
}

/** Throws InstanceCollision naming the first running instance (other than this process) `mine` collides with. */
export function checkCollisions(mine: Holdings, dir = registryDir(), selfPid = process.pid): void {
  for (const r of runningInstances(dir)) {
    if (r.pid === selfPid) continue;
    const c = collision(mine, r);
    if (c) throw new InstanceCollision(c);
  }
}

/**
 * Records this process as a running instance holding `mine`, after checking that no running
 * one holds any of it (checked again after writing, so of two simultaneous starts neither wins
 * silently). Returns the function that removes the record.
 */
export function registerInstance(mine: Holdings, dir = registryDir()): () => void {
  checkCollisions(mine, dir);
  mkdirSync(dir, { recursive: true });
  const rec: InstanceRecord = { ...selfRecord(mine.device), ...mine };
  const file = join(dir, `${rec.pid}.json`);
  writeFileSync(`${file}.tmp`, JSON.stringify(rec));
  // rename: the record appears whole (readers skip names not ending in .json).
  renameSync(`${file}.tmp`, file);
  const remove = () => rmSync(file, { force: true });
  try { checkCollisions(mine, dir); } catch (e) { remove(); throw e; }
  return remove;
}
