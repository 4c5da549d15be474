// A one-line progress indicator for long work (crawl, `groupvpn start`, benchmarks): it
// rewrites one line of stderr while that is a terminal, and writes nothing at all when it
// is not (a pipe, a file, CI), so scripted output stays clean.

/** The part of a stream the indicator uses (process.stderr is one). */
export interface ProgressStream { readonly isTTY?: boolean; write(s: string): unknown }

export interface Progress {
  /** Shows `line` in place of the previous one (at most every intervalMs; the first at once). */
  update(line: string): void;
  /** Clears the line, if anything was shown; later updates show again. */
  done(): void;
  /** Writes a line of ordinary output to the stream (always, TTY or not) without mangling the progress line. */
  note(line: string): void;
}

export function progress(stream: ProgressStream = process.stderr, o: { intervalMs?: number; now?: () => number } = {}): Progress {
  if (!stream.isTTY) return { update() {}, done() {}, note: (line) => { stream.write(line + '\n'); } };
  const interval = o.intervalMs ?? 100, now = o.now ?? (() => performance.now());
  let last = -Infinity, shown: string | undefined;
  return {
    update(line) {
      const t = now();
      if (t - last < interval) return;
      last = t;
      shown = line;
      stream.write(`\r${line}\x1b[K`);
    },
    done() {
      if (shown !== undefined) stream.write('\r\x1b[K');
      shown = undefined;
      last = -Infinity;
    },
    note(line) {
      stream.write(shown === undefined ? line + '\n' : `\r\x1b[K${line}\n${shown}`);
    },
  };
}
