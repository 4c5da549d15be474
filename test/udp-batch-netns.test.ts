// The batched socket's GSO fallback, in a fresh network namespace whose loopback has a
// 1280-byte MTU: a run of 1452-byte datagrams cannot go out as one segmented send (each
// segment must fit the MTU), so the kernel refuses it and the socket sends those datagrams
// one by one (the kernel fragments them), keeping GSO for later runs. Needs the lab (root,
// unshare -n); with CI=true a missing capability is a failure.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { requireLab } from '../bench/lab/netns.js';
import { batchUnavailableReason } from '../src/transport/udp-batch.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const script = `
import { BatchSocket } from './src/transport/udp-batch.ts';
let failed = 0;
const tx = new BatchSocket(false, true, (n) => { failed += n; }), rx = new BatchSocket(false, true, () => {});
tx.bind('127.0.0.1', 0); const port = rx.bind('127.0.0.1', 0); tx.start(() => {});
const got = []; rx.start((m) => got.push(m.toString('hex')));
const sent = [];
for (let i = 0; i < 10; i++) { const p = Buffer.alloc(1442, i); sent.push(Buffer.concat([Buffer.alloc(10, 0xee), p]).toString('hex')); tx.send(Buffer.alloc(10, 0xee), p, '127.0.0.1', port); }
tx.flush();
const end = Date.now() + 3000;
const poll = () => {
  if (got.length < 10 && Date.now() < end) { setTimeout(poll, 10); return; }
  console.log(JSON.stringify({ same: JSON.stringify(got) === JSON.stringify(sent), got: got.length, failed, gso: tx.offloads.gso, sendCalls: tx.stats.sendCalls }));
  tx.close(); rx.close();
};
poll();
`;

const missing = batchUnavailableReason();
if (missing !== null) {
  if (process.env['CI'] === 'true') t.fail(`batched UDP I/O unavailable: ${missing}`);
  else t.plan(0, `batched UDP I/O unavailable: ${missing}`);
} else if (requireLab(t, ['unshare', 'ip'])) {
  t.test('a segmented send the route refuses goes out datagram by datagram', async (t) => {
    const r = spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up mtu 1280 && exec node --import tsx --input-type=module -e "$0"', script],
      { cwd: root, encoding: 'utf8', timeout: 30_000 });
    t.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { same: boolean; got: number; failed: number; gso: boolean; sendCalls: number };
    t.equal(out.got, 10, 'all ten arrive');
    t.ok(out.same, 'intact and in order');
    t.equal(out.failed, 0, 'none counted as failed');
    t.equal(out.gso, true, 'GSO stays on for later runs (the refusal was about this run)');
    t.equal(out.sendCalls, 2, 'one refused segmented send, then one sendmmsg of single datagrams');
  });
}
