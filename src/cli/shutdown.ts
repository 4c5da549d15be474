// SIGINT/SIGTERM: leave cleanly (neighbours are told), release sockets, and exit within
// 2 s even if something hangs.
import type { Logger } from '../util/log.js';

export function installShutdown(stop: () => Promise<void>, log: Logger, limitMs = 1800): void {
  let stopping = false;
  const onSignal = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${sig}: leaving the overlay`);
    setTimeout(() => { log.warn('shutdown took too long; exiting'); process.exit(1); }, limitMs).unref();
    stop().then(() => process.exit(0), (e) => { log.error(`shutdown: ${(e as Error).message}`); process.exit(1); });
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
}
