// SIGINT/SIGTERM: leave cleanly (neighbours are told), release sockets, and exit within
// 2 s even if something hangs. Once leaving, the expected failures of pending handshakes
// and links are logged at debug level only (see quietable).
import type { QuietableLogger } from '../util/log.js';

export function installShutdown(stop: () => Promise<void>, log: QuietableLogger, limitMs = 1800): void {
  let stopping = false;
  const onSignal = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${sig}: leaving the overlay`);
    log.quiet();
    setTimeout(() => { log.error('shutdown took too long; exiting'); process.exit(1); }, limitMs).unref();
    stop().then(() => process.exit(0), (e) => { log.error(`shutdown: ${(e as Error).message}`); process.exit(1); });
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
}
