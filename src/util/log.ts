// Minimal leveled logger; nodes get a child with their short address as prefix. Two
// formats: text (the default: "time LEVEL prefix message k=v") and json, one object per
// line: {time, level, node, component, message, ...fields}.
export type Level = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };

/** The values of every command's --log-level option. */
export const LEVELS = Object.keys(ORDER) as Level[];
export const LOG_LEVEL_USAGE = `--log-level ${LEVELS.join('|')}`;

/** A --log-level value, or undefined if it is none of LEVELS. */
export function parseLevel(s: string): Level | undefined {
  return (LEVELS as string[]).includes(s) ? (s as Level) : undefined;
}

export type LogFormat = 'text' | 'json';
export const LOG_FORMATS: LogFormat[] = ['text', 'json'];
export const LOG_FORMAT_USAGE = `--log-format ${LOG_FORMATS.join('|')}`;

/** A --log-format value, or undefined if it is none of LOG_FORMATS. */
export function parseLogFormat(s: string): LogFormat | undefined {
  return (LOG_FORMATS as string[]).includes(s) ? (s as LogFormat) : undefined;
}

/** Structured extras of one line (JSON: more keys of the object; text: ` key=value` at the end). */
export type LogFields = Record<string, string | number | boolean | null>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(prefix: string): Logger;
}

type Sink = (line: string) => void;
const stderrSink: Sink = (l) => process.stderr.write(l + '\n');

export function createLogger(level: Level = 'warn', prefix = '', sink: Sink = stderrSink): Logger {
  const at = ORDER[level];
  const mk = (lv: Level) => (msg: string, fields?: LogFields) => {
    if (ORDER[lv] >= at) sink(`${new Date().toISOString()} ${lv.toUpperCase()} ${prefix}${msg}${fields ? textFields(fields) : ''}`);
  };
  return {
    debug: mk('debug'), info: mk('info'), warn: mk('warn'), error: mk('error'),
    child: (p) => createLogger(level, `${prefix}${p} `, sink),
  };
}

const textFields = (f: LogFields): string => Object.entries(f).map(([k, v]) => ` ${k}=${typeof v === 'string' && /[\s"=]/.test(v) ? JSON.stringify(v) : v}`).join('');

/** "dhcp: ACK …" → component dhcp; the messages' own "component: " convention. */
const COMPONENT = /^([A-Za-z][\w-]*(?: [a-z][\w-]*)?): ([^]*)$/;
const RESERVED = new Set(['time', 'level', 'node', 'component', 'message']);

/**
 * One JSON object per line. The first child level is the node (Node names its logger after
 * its short address); deeper children name the component, else a leading "component: " of
 * the message does, else it is `main`. Fields never overwrite the five fixed keys.
 */
export function createJsonLogger(level: Level = 'warn', sink: Sink = stderrSink, path: string[] = []): Logger {
  const at = ORDER[level];
  const mk = (lv: Level) => (msg: string, fields?: LogFields) => {
    if (ORDER[lv] < at) return;
    const m = path.length > 1 ? undefined : COMPONENT.exec(msg);
    const o: Record<string, unknown> = {
      time: new Date().toISOString(), level: lv, node: path[0] ?? null,
      component: path.length > 1 ? path.slice(1).join('.') : m ? m[1] : 'main', message: m ? m[2] : msg,
    };
    if (fields) for (const [k, v] of Object.entries(fields)) if (!RESERVED.has(k)) o[k] = v;
    sink(JSON.stringify(o));
  };
  return {
    debug: mk('debug'), info: mk('info'), warn: mk('warn'), error: mk('error'),
    child: (p) => createJsonLogger(level, sink, [...path, p]),
  };
}

/** The logger of a command's --log-level and --log-format. */
export function loggerFor(level: Level, format: LogFormat, sink: Sink = stderrSink): Logger {
  return format === 'json' ? createJsonLogger(level, sink) : createLogger(level, '', sink);
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
    debug: (m, f) => l.debug(m, f),
    info: (m, f) => (quiet ? l.debug(m, f) : l.info(m, f)),
    warn: (m, f) => (quiet ? l.debug(m, f) : l.warn(m, f)),
    error: (m, f) => l.error(m, f),
    child: (p) => wrap(l.child(p)),
  });
  return { ...wrap(inner), quiet: () => { quiet = true; } };
}
