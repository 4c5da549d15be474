#!/usr/bin/env node
// bput: store a value in the DHT through the local control API (DhtClient.Put / Create).
import { parseArgs } from 'node:util';
import { EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, exitCodeOf } from '../src/cli/exit.js';
import { ControlClient, ControlClientError } from '../src/control/client.js';
import { DEFAULT_DHT_LIMITS } from '../src/dht/limits.js';
import { DhtCode } from '../src/dht/service.js';
import { readBounded, TooLargeError } from '../src/util/bounded-read.js';

const USAGE = 'usage: bput [--port P] [--ttl S] [--create] [--input FILE|-] <key> [<value>]';
const fail = (msg: string, code: number, usage = false): number => {
  process.stderr.write(`bput: ${msg.replace(/\s*\n\s*/g, ' ')}\n${usage ? USAGE + '\n' : ''}`);
  return code;
};

async function main(): Promise<number> {
  // parseArgs refuses `--ttl -5` as ambiguous; glue such values on so the TTL check can explain.
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length - 1; i++) {
    if ((argv[i] === '--ttl' || argv[i] === '--port') && /^-\d/.test(argv[i + 1]!)) argv.splice(i, 2, `${argv[i]}=${argv[i + 1]}`);
  }
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
      port: { type: 'string', default: '10000' }, ttl: { type: 'string', default: '86400' },
      create: { type: 'boolean', default: false }, input: { type: 'string', short: 'i' }, help: { type: 'boolean', short: 'h' },
    } }));
  } catch (e) { return fail((e as Error).message, EXIT_BAD_INPUT, true); }
  if (values.help) { process.stdout.write(`${USAGE}\n`); return EXIT_OK; }
  if (positionals.length === 0) return fail('missing key', EXIT_BAD_INPUT, true);
  const hasInput = values.input !== undefined;
  if (positionals.length > 2) return fail('too many arguments (quote a value with spaces)', EXIT_BAD_INPUT, true);
  if (hasInput === (positionals.length === 2)) return fail('give the value either as an argument or with --input, exactly one', EXIT_BAD_INPUT, true);
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port!) || port < 1 || port > 65535) return fail('--port must be 1-65535', EXIT_BAD_INPUT);
  const ttl = Number(values.ttl);
  if (!/^\d+$/.test(values.ttl!) || ttl <= 0 || !Number.isSafeInteger(ttl)) return fail(`--ttl must be a positive whole number of seconds, got ${JSON.stringify(values.ttl)}`, EXIT_BAD_INPUT);

  const key = Buffer.from(positionals[0]!, 'utf8');
  const { maxKeyBytes, maxValueBytes } = DEFAULT_DHT_LIMITS;
  if (key.length === 0) return fail('the key is empty', EXIT_BAD_INPUT);
  if (key.length > maxKeyBytes) return fail(`the key is ${key.length} bytes; the limit is ${maxKeyBytes}`, EXIT_BAD_INPUT);
  let value: Buffer;
  if (!hasInput) value = Buffer.from(positionals[1]!, 'utf8');
  else {
    // At most the limit + 1 bytes are read, so /dev/zero or an endless pipe is refused at once.
    try { value = await readBounded(values.input!, maxValueBytes); } catch (e) {
      if (e instanceof TooLargeError) return fail(`the value (${values.input === '-' ? 'standard input' : values.input}) is larger than the limit of ${maxValueBytes} bytes`, EXIT_BAD_INPUT);
      return fail(`cannot read ${values.input}: ${(e as Error).message}`, EXIT_BAD_INPUT);
    }
  }
  // The node checks its own (configurable) limit too; this catches the default early.
  if (value.length > maxValueBytes) return fail(`the value is ${value.length} bytes; the limit is ${maxValueBytes}`, EXIT_BAD_INPUT);
  if (value.length === 0) return fail(`the value is empty${hasInput ? ` (${values.input === '-' ? 'standard input' : values.input} has no bytes)` : ''}`, EXIT_BAD_INPUT);

  const client = new ControlClient(port, '127.0.0.1', 1);
  try {
    await client.localproxy(values.create ? 'DhtClient.Create' : 'DhtClient.Put',
      { $base64: key.toString('base64') }, { $base64: value.toString('base64') }, ttl);
  } catch (e) {
    if (e instanceof ControlClientError && e.code === DhtCode.Exists) return fail(`already exists: ${e.message.replace(/^already exists:\s*/, '')}`, EXIT_FAILED);
    return fail((e as Error).message, exitCodeOf(e));
  } finally { client.close(); }
  // The node answers only once a majority of the key's replicas stored the value.
  const capped = ttl > DEFAULT_DHT_LIMITS.maxTtl ? ` (nodes cap it at their Dht/MaxTtl, ${DEFAULT_DHT_LIMITS.maxTtl} s by default)` : '';
  process.stdout.write(`stored ${JSON.stringify(positionals[0])}${values.create ? ' (create)' : ''}: ${value.length} byte${value.length === 1 ? '' : 's'}, ttl ${ttl} s${capped}; a majority of replicas accepted it\n`);
  return EXIT_OK;
}

main().then((c) => { process.exitCode = c; }, (e) => { process.stderr.write(`bput: ${(e as Error).message}\n`); process.exitCode = EXIT_FAILED; });
