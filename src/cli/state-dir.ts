// Where a VPN program keeps its files: the state directory (pid file, log, lease, SocialVPN's
// friend list and address book), CONFIG.data next to the config file unless --state-dir says.
import { join, resolve } from 'node:path';

/** --state-dir, or CONFIG.data next to the config file. */
export const stateDirFor = (config: string, stateDir?: string): string => resolve(stateDir ?? `${resolve(config)}.data`);
export const logFile = (stateDir: string, program = 'groupvpn'): string => join(stateDir, `${program}.log`);
