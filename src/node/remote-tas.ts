// Bootstrap addresses (RemoteTAs) that cannot be reached as written are worth a warning at
// start: otherwise a lone node starts, and why it stays alone shows only at debug level.
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { isBadDottedQuad } from '../transport/ip.js';
import type { TransportAddress } from '../transport/ta.js';
import type { Logger } from '../util/log.js';

export type HostLookup = (host: string) => Promise<unknown>;
const LOOKUP_TIMEOUT_MS = 10_000;

/** Why a bootstrap TA cannot be reached as written, or undefined when its host is an IP or resolves. */
export async function remoteTaProblem(ta: TransportAddress, lookup: HostLookup = dnsLookup, timeoutMs = LOOKUP_TIMEOUT_MS): Promise<string | undefined> {
  if ((ta.kind !== 'udp' && ta.kind !== 'tcp') || isIP(ta.host)) return undefined;
  if (isBadDottedQuad(ta.host)) return `${ta.host} is not a valid IPv4 address`;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    timer.unref();
  });
  try {
    await Promise.race([lookup(ta.host), late]);
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return `host ${ta.host} does not resolve (${typeof code === 'string' ? code : (e as Error).message})`;
  } finally {
    clearTimeout(timer);
  }
}

/** One warning per RemoteTA that cannot be reached (and one more when none can); returns how many. */
export async function warnUnusableRemoteTas(tas: readonly TransportAddress[], log: Logger, lookup?: HostLookup, timeoutMs?: number): Promise<number> {
  const problems = await Promise.all(tas.map((ta) => remoteTaProblem(ta, lookup, timeoutMs)));
  let bad = 0;
  problems.forEach((p, i) => {
    if (!p) return;
    bad++;
    log.warn(`RemoteTAs: ${tas[i]!.key}: ${p}; this bootstrap cannot be reached`);
  });
  if (bad > 0 && bad === tas.length) log.warn(`none of the RemoteTAs can be reached: this node stays alone until one can`);
  return bad;
}
