#!/usr/bin/env node
// bget: read a key from the DHT through the local control API (DhtClient.Get).
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, exitCodeOf } from '../src/cli/exit.js';
import { ControlClient } from '../src/control/client.js';
import { DEFAULT_DHT_LIMITS } from '../src/dht/limits.js';

const USAGE = 'usage: bget [--port P] [--quiet] [--output FILE|-] [--json] <key>';
const fail = (msg: string, code: number, usage = false): number => {
  process.stderr.write(`bget: ${msg.replace(/\s*\n\s*/g, ' ')}\n${usage ? USAGE + '\n' : ''}`);
  return code;
};

/** The value as text when it is UTF-8 with no control characters but tab (so one value = one line). */
function asText(v: Uint8Array): string | undefined {
  try {
    const s = new TextDecoder('utf-8', { fatal: true }).decode(v);
    return /[\x00-\x08\x0a-\x1f\x7f-\x9f]/.test(s) ? undefined : s;
  } catch { return undefined; }
}

async function main(): Promise<number> {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({ allowPositionals: true, options: {
      port: { type: 'string', default: '10000' }, quiet: { type: 'boolean', short: 'q', default: false },
      output: { type: 'string', short: 'o' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' },
    } }));
  } catch (e) { return fail((e as Error).message, EXIT_BAD_INPUT, true); }
  if (values.help) { process.stdout.write(`${USAGE}\n`); return EXIT_OK; }
  if (positionals.length !== 1) return fail(positionals.length ? 'exactly one key expected' : 'missing key', EXIT_BAD_INPUT, true);
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port!) || port < 1 || port > 65535) return fail('--port must be 1-65535', EXIT_BAD_INPUT);
  if (values.json && values.output !== undefined) return fail('--json and --output cannot be combined', EXIT_BAD_INPUT);
  const key = positionals[0]!;
  if (key === '') return fail('the key is empty', EXIT_BAD_INPUT);
  const keyBytes = Buffer.byteLength(key, 'utf8');
  if (keyBytes > DEFAULT_DHT_LIMITS.maxKeyBytes) return fail(`the key is ${keyBytes} bytes; the limit is ${DEFAULT_DHT_LIMITS.maxKeyBytes}`, EXIT_BAD_INPUT);

  const client = new ControlClient(port, '127.0.0.1', 1);
  let results;
  try {
    results = (await client.localproxy('DhtClient.Get', { $base64: Buffer.from(key, 'utf8').toString('base64') })) as
      { value: Uint8Array; ttl: number; age: number }[];
  } catch (e) { return fail((e as Error).message, exitCodeOf(e)); } finally { client.close(); }
  if (!Array.isArray(results) || results.length === 0) return fail(`no value for ${key}`, EXIT_FAILED);

  if (values.output !== undefined) {
    const v = results[0]!.value;
    try {
      if (values.output === '-') process.stdout.write(v); else writeFileSync(values.output, v);
    } catch (e) { return fail(`cannot write ${values.output}: ${(e as Error).message}`, EXIT_FAILED); }
    return EXIT_OK;
  }
  if (values.json) {
    const out = results.map((r) => ({ value: asText(r.value) ?? { $base64: Buffer.from(r.value).toString('base64') }, ttl: r.ttl, age: r.age }));
    process.stdout.write(JSON.stringify(out) + '\n');
    return EXIT_OK;
  }
  for (const r of results) {
    const text = asText(r.value) ?? `base64:${Buffer.from(r.value).toString('base64')}`;
    process.stdout.write(values.quiet ? `${text}\n` : `${text}\tttl=${r.ttl}\tage=${r.age}\n`);
  }
  return EXIT_OK;
}

main().then((c) => { process.exitCode = c; }, (e) => { process.stderr.write(`bget: ${(e as Error).message}\n`); process.exitCode = EXIT_FAILED; });
