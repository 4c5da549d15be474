// bench:vpn's Node floor (bench/lab/floor-relay.ts) is a measuring device: these checks keep
// it honest. Plain and with AEAD, it must carry pings and a TCP stream of super-packets intact
// between two lab hosts, so that the benchmark measures a working path and not a broken one.
import t from 'tap';
import { BIN } from '../bench/lab/ipop.js';
import { Lab, pingArgv, requireLab, waitFor } from '../bench/lab/netns.js';
import { tcpTransfer } from './helpers/transfer.js';

t.test('the floor relay carries pings and a TCP stream, plain and with AEAD', async (t) => {
  if (!requireLab(t)) return;
  const lab = await Lab.create('floor', ['a', 'b']);
  t.teardown(() => lab.destroy());
  for (const variant of [[], ['--aead']]) {
    const name = variant.length ? 'with AEAD' : 'plain';
    const relays = ([['a', 'b'], ['b', 'a']] as const).map(([h, peer], i) => lab.spawn(h, [process.execPath, BIN.floorRelay, '--tap', 'tapfloor',
      '--vip', `10.147.0.${i + 1}/24`, '--local', lab.ip(h), '--peer', lab.ip(peer), ...variant]));
    await waitFor(() => relays.every((r) => /floor relay/.test(lab.output(r))) || relays.some((r) => r.exitCode !== null), 10_000, 'relays');
    t.ok(relays.every((r) => r.exitCode === null), `${name}: both relays run (${relays.map((r) => lab.output(r).trim()).join(' | ')})`);
    const up = await waitFor(async () => (await lab.exec('a', pingArgv('10.147.0.2', { count: 1, waitS: 1 }), { timeoutMs: 5000 })).code === 0, 15_000, 'ping', 200)
      .then(() => true, () => false);
    t.ok(up, `${name}: a pings b through the relay`);
    const x = await tcpTransfer(lab, 'a', 'b', '10.147.0.2', 8, 60_000);
    t.equal(x.code, 0, x.stderr);
    t.equal(x.receivedBytes, 8 * 1024 * 1024, `${name}: all 8 MB arrive`);
    t.equal(x.receivedDigest, x.sentDigest, `${name}: with the same SHA-256`);
    for (const r of relays) r.kill('SIGTERM');
    await waitFor(() => relays.every((r) => r.exitCode !== null || r.signalCode !== null), 5000, 'relays to stop');
  }
});
