// Keeps a running VPN's friend list current: `socialvpn friend add/remove` rewrite
// friends.json (a new file renamed into place), and the watcher re-reads it when its inode,
// size or modification time change, every periodMs on the injected clock. A corrupt file
// keeps the last good list (onError says why) until it is fixed.
import fs from 'node:fs';
import type { Clock, TimerHandle } from '../../util/clock.js';
import { FriendList } from './friends.js';
import { SocialError } from './social-error.js';

const MISSING = 'missing';

function signature(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return MISSING;
  }
}

export class FriendWatcher {
  private seen: string;
  private current: FriendList;
  private readonly timer: TimerHandle;

  /** Loads `file` now (SocialError if it is corrupt), then watches it. */
  constructor(
    private readonly file: string,
    clock: Clock,
    private readonly onChange: (list: FriendList) => void,
    periodMs = 1000,
    private readonly onError: (e: SocialError) => void = () => {},
  ) {
    this.seen = signature(file);
    this.current = FriendList.load(file);
    this.timer = clock.setInterval(() => this.check(), periodMs);
  }

  /** The last list read successfully. */
  get list(): FriendList { return this.current; }

  /** Re-reads the file if it changed since the last look; never throws. */
  check(): void {
    const sig = signature(this.file);
    if (sig === this.seen) return;
    this.seen = sig;
    let next: FriendList;
    try {
      next = FriendList.load(this.file);
    } catch (e) {
      this.onError(e instanceof SocialError ? e : new SocialError(`friend list ${this.file}: ${(e as Error).message}`));
      return;
    }
    this.current = next;
    try { this.onChange(next); } catch (e) {
      this.onError(new SocialError(`friend list change handler failed: ${(e as Error).message}`));
    }
  }

  stop(): void { this.timer.cancel(); }
}
