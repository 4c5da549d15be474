#!/usr/bin/env node
// bput: store a value in the DHT through the local control API (DhtClient.Put / Create).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ControlClient, ControlClientError } from '../src/control/client.js';
import { DEFAULT_DHT_LIMITS } from '../src/dht/limits.js';

const USAGE = 'usage: bput [--port P] [--ttl S] [--create] [--input FILE|-] <key> [<value>]';
const EXISTS = -32011; // DhtCode.Exists (a const enum in src/dht/service.ts)
const fail = (msg: string, code: number, usage = false): number => {
  process.stderr.write(`bput: ${msg.replace(/\s*\n\s*/g, ' ')}\n${usage ? USAGE + '\n' : ''}`);
  return code;
};

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

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
  } catch (e) { return fail((e as Error).message, 2, true); }
  if (values.help) { process.stdout.write(`${USAGE}\n`); return 0; }
  if (positionals.length === 0) return fail('missing key', 2, true);
  const hasInput = values.input !== undefined;
  if (positionals.length > 2) return fail('too many arguments (quote a value with spaces)', 2, true);
  if (hasInput === (positionals.length === 2)) return fail('give the value either as an argument or with --input, exactly one', 2, true);
  const port = Number(values.port);
  if (!/^\d+$/.test(values.port!) || port < 1 || port > 65535) return fail('--port must be 1-65535', 2);
  const ttl = Number(values.ttl);
  if (!/^\d+$/.test(values.ttl!) || ttl <= 0 || !Number.isSafeInteger(ttl)) return fail(`--ttl must be a positive whole number of seconds, got ${JSON.stringify(values.ttl)}`, 2);

  const key = Buffer.from(positionals[0]!, 'utf8');
  const { maxKeyBytes, maxValueBytes } = DEFAULT_DHT_LIMITS;
  if (key.length === 0) return fail('the key is empty', 2);
  if (key.length > maxKeyBytes) return fail(`the key is ${key.length} bytes; the limit is ${maxKeyBytes}`, 2);
  let value: Buffer;
  if (!hasInput) value = Buffer.from(positionals[1]!, 'utf8');
  else {
    try { value = values.input === '-' ? await readStdin() : readFileSync(values.input!); } catch (e) {
      return fail(`cannot read ${values.input}: ${(e as Error).message}`, 2);
    }
  }
  // The node checks its own (configurable) limit too; this catches the default early.
  if (value.length > maxValueBytes) return fail(`the value is ${value.length} bytes; the limit is ${maxValueBytes}`, 2);

  const client = new ControlClient(port, '127.0.0.1', 1);
  try {
    await client.localproxy(values.create ? 'DhtClient.Create' : 'DhtClient.Put',
      { $base64: key.toString('base64') }, { $base64: value.toString('base64') }, ttl);
    return 0;
  } catch (e) {
    if (e instanceof ControlClientError && e.code === EXISTS) return fail(`already exists: ${e.message.replace(/^already exists:\s*/, '')}`, 1);
    return fail((e as Error).message, 1);
  } finally { client.close(); }
}

main().then((c) => { process.exitCode = c; }, (e) => { process.stderr.write(`bput: ${(e as Error).message}\n`); process.exitCode = 1; });
