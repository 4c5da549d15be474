// Why a node has not joined its ring: the latest failure per bootstrap TA, as the edge and
// link layers log it (seen at every level, also below the one printed), so `groupvpn start`
// can say the cause instead of only "are they running and reachable?".
import type { LogFields, Logger } from '../util/log.js';

const SECURE = /^secure handshake to (\S+) failed: (.*)$/;
// The link layer repeats a failed secure handshake as "edge to X failed: handshake with X: ...".
const EDGE = /^edge to (\S+) failed: (?!handshake with )(.*)$/;
const REALM = /^(\S+) is in another namespace$/;

export class JoinFailures {
  readonly log: Logger;
  private readonly latest = new Map<string, string>();

  constructor(inner: Logger) { this.log = this.wrap(inner); }

  /** The latest failure of each of the (at most 3) TAs that failed last, or undefined if none did. */
  cause(): string | undefined {
    return this.latest.size ? [...this.latest.values()].slice(-3).join('; ') : undefined;
  }

  private see(msg: string): void {
    const m = SECURE.exec(msg) ?? EDGE.exec(msg) ?? REALM.exec(msg);
    // "closed locally" is our own shutdown, not the bootstrap's answer.
    if (!m || /closed locally/.test(msg)) return;
    this.latest.delete(m[1]!);
    this.latest.set(m[1]!, msg);
  }

  private wrap(l: Logger): Logger {
    const tee = (level: 'debug' | 'info' | 'warn' | 'error') => (msg: string, fields?: LogFields) => { this.see(msg); l[level](msg, fields); };
    return { debug: tee('debug'), info: tee('info'), warn: tee('warn'), error: tee('error'), child: (p) => this.wrap(l.child(p)) };
  }
}
