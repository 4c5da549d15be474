// A MAC address as a 48-bit integer: exact in a double, a cheap Map key, and read straight
// out of a frame without allocating (switch mode keys its tables on every frame).

/** frame[off..off+6) as a number in [0, 2^48); the caller checks off + 6 <= frame.length. */
export function macKey(frame: Uint8Array, off: number): number {
  const low = ((frame[off + 2]! << 24) | (frame[off + 3]! << 16) | (frame[off + 4]! << 8) | frame[off + 5]!) >>> 0;
  return frame[off]! * 2 ** 40 + frame[off + 1]! * 2 ** 32 + low;
}

/** The group bit (multicast and broadcast) of a key. */
export function isGroupKey(key: number): boolean {
  return Math.floor(key / 2 ** 40) % 2 === 1;
}

/** 'aa:bb:cc:dd:ee:ff' for a key. */
export function macKeyToString(key: number): string {
  let s = '';
  for (let i = 5; i >= 0; i--) {
    const byte = Math.floor(key / 2 ** (8 * i)) % 256;
    s += (i < 5 ? ':' : '') + byte.toString(16).padStart(2, '0');
  }
  return s;
}
