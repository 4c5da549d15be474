// Minimal leveled logger; nodes get a child with their short address as prefix.
export type Level = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };

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
