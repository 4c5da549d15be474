// Minimal leveled logger; nodes get a child with their short address as prefix.
export type Level = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };

/** The values of every command's --log-level option. */
export const LEVELS = Object.keys(ORDER) as Level[];
export const LOG_LEVEL_USAGE = `--log-level ${LEVELS.join('|')}`;

/** A --log-level value, or undefined if it is none of LEVELS. */
export function parseLevel(s: string): Level | undefined {
  return (LEVELS as string[]).includes(s) ? (s as Level) : undefined;
}

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  child(prefix: string): Logger;
}

export function createLogger(level: Level = 'warn', prefix = '', sink: (line: string) => void = (l) => process.stderr.write(l + '\n')): Logger {
  const at = ORDER[level];
  const mk = (lv: Level) => (msg: string) => { if (ORDER[lv] >= at) sink(`${new Date().toISOString()} ${lv.toUpperCase()} ${prefix}${msg}`); };
  return {
    debug: mk('debug'), info: mk('info'), warn: mk('warn'), error: mk('error'),
    child: (p) => createLogger(level, `${prefix}${p} `, sink),
  };
}

export const silentLogger: Logger = createLogger('silent');

export interface QuietableLogger extends Logger {
  /** From now on info and warn lines are debug lines (errors stay errors), in every child too. */
  quiet(): void;
}

/**
 * A logger that can be turned down for a clean shutdown: leaving nodes fail their pending
 * handshakes and links by design, and those lines would look like errors.
 */
export function quietable(inner: Logger): QuietableLogger {
  let quiet = false;
  const wrap = (l: Logger): Logger => ({
    debug: (m) => l.debug(m),
    info: (m) => (quiet ? l.debug(m) : l.info(m)),
    warn: (m) => (quiet ? l.debug(m) : l.warn(m)),
    error: (m) => l.error(m),
    child: (p) => wrap(l.child(p)),
  });
  return { ...wrap(inner), quiet: () => { quiet = true; } };
}
