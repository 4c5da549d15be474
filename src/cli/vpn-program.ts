// What makes a VPN program (`groupvpn`, `socialvpn`) itself: its config, how its mode starts
// once the node has joined, and how its status reads. The commands they share are in
// vpn-command.ts, the foreground run in groupvpn-run.ts.
import type { Loaded } from './groupvpn-run.js';
import type { State } from './groupvpn-status.js';
import type { ModeContext, RunningVpn } from './vpn-modes.js';

export interface VpnProgram {
  name: 'groupvpn' | 'socialvpn';
  /** The CLI script `start` runs in the background as `SCRIPT run …`. */
  script: string;
  usage: string;
  defaultConfig: string;
  /** Reads and checks the config files; throws ConfigError (exit 2). */
  load(config: string, ipopFile: string | undefined, stateDir: string | undefined): Loaded;
  /** Starts the mode once the node is in the ring. */
  startMode(ctx: ModeContext, loaded: Loaded): Promise<RunningVpn>;
  /** After "NAME started (pid N): " in `start`'s reply. */
  startedLine(s: State): string;
  printStatus(s: State, say: (line: string) => void): void;
  /** `status --json`; the whole status reply when absent. */
  statusJson?(s: State): unknown;
}
