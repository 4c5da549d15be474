// bench:vpn's Node floor (bench/lab/floor-relay.ts) is a measuring device: these checks keep
// it honest. Plain, with AEAD and on a native thread (floor-native.ts, also sealing flow datagrams), it must carry pings and a TCP stream of super-packets intact
// between two lab hosts, so that the benchmark measures a working path and not a broken one.
import t from 'tap';
import { startFloor } from '../bench/lab/baselines.js';
import { Lab, requireLab, stopProcess } from '../bench/lab/netns.js';
import { tcpTransfer } from './helpers/transfer.js';

t.test('the floor relay carries pings and a TCP stream, plain, with AEAD and on a native thread', async (t) => {
  if (!requireLab(t, ['ping'])) return;
  const lab = await Lab.create('floor', ['a', 'b']);
  t.teardown(() => lab.destroy());
  for (const variant of ['plain', 'aead', 'native', 'native-flow'] as const) {
    const name = variant === 'aead' ? 'with AEAD' : variant === 'native' ? 'on a native thread' : variant === 'native-flow' ? 'on a native thread with flow datagrams' : 'plain';
    const floor = await startFloor(lab, ['a', 'b'], variant).catch((e: Error) => e);
    if (floor instanceof Error) { t.fail(`${name}: ${floor.message}`); continue; }
    t.pass(`${name}: both relays run and a pings b through them`);
    const x = await tcpTransfer(lab, 'a', 'b', floor.vip(1), 8, 60_000);
    t.equal(x.code, 0, x.stderr);
    t.equal(x.receivedBytes, 8 * 1024 * 1024, `${name}: all 8 MB arrive`);
    t.equal(x.receivedDigest, x.sentDigest, `${name}: with the same SHA-256`);
    await Promise.all(floor.daemons.map((d) => stopProcess(d)));
  }
});
