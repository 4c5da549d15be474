// Exit codes shared by every command-line tool (bget, bput, crawl, brunet-ca, groupvpn):
//   0 done, 1 missing key or the operation failed, 2 bad input (usage, invalid key or value,
//   too large), 3 nothing running (no control API answers).
import { ControlClientError, NOT_RUNNING } from '../control/client.js';
import { DhtCode } from '../dht/service.js';
import { RpcCode } from '../rpc/rpc-wire.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_BAD_INPUT = 2;
export const EXIT_NOT_RUNNING = 3;

/** The exit code for an error from a control API call. */
export function exitCodeOf(e: unknown): number {
  if (!(e instanceof ControlClientError)) return EXIT_FAILED;
  if (e.code === NOT_RUNNING) return EXIT_NOT_RUNNING;
  if (e.code === DhtCode.Invalid || e.code === RpcCode.BadParams) return EXIT_BAD_INPUT;
  return EXIT_FAILED;
}
