// The paths bench:vpn can measure, and its --paths option that picks some of them (the plain
// underlay is always measured: every added RTT is taken over it or over the switch path's wire).

export const PATHS = ['tinc', 'wireguard-go', 'router', 'router-native', 'router-native-no-offload', 'router-reference', 'router-no-offload', 'switch', 'social', 'floor', 'floor-aead', 'floor-spin', 'floor-native', 'floor-flow'] as const;
export type PathName = (typeof PATHS)[number];

/** "router,switch" → that set; undefined → all paths. Throws a one-line error on an unknown or empty list. */
export function parsePaths(arg: string | undefined): Set<PathName> {
  if (arg === undefined) return new Set(PATHS);
  const names = arg.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new Error(`--paths: expected a comma-separated list of ${PATHS.join(', ')}`);
  const bad = names.filter((n) => !(PATHS as readonly string[]).includes(n));
  if (bad.length > 0) throw new Error(`--paths: unknown ${bad.join(', ')} (known: ${PATHS.join(', ')})`);
  return new Set(names as PathName[]);
}
