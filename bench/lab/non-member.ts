#!/usr/bin/env node
// An overlay node outside a switch-mode VPN's member list (same realm and group secret, so
// its secure edges are accepted) that opens a direct connection to a member and sends it
// Ethernet frames (Payload.Ethernet), as an intruder would. The member must refuse them.
// For test/vpn-switch-netns.test.ts, run inside a lab namespace:
//
//   node non-member.js CONFIG MEMBER_ADDRESS COUNT SOURCE_MAC
//
// Prints {"sent":N} once the frames are out; exit 1 with one line on failure, 2 on bad input.
import { Address } from '../../src/address/address.js';
import { loadNodeConfig } from '../../src/config/node-config.js';
import { startOverlay } from '../../src/cli/overlay.js';
import { Mode, Payload } from '../../src/routing/ah-wire.js';
import { createLogger } from '../../src/util/log.js';

/** A local experimental EtherType (IEEE 802 "Local Experimental Ethertype 1"). */
export const NON_MEMBER_ETHERTYPE = 0x88b5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(ok: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(100);
  }
}

/** A broadcast frame from `src` (aa:bb:...): the kind a bridge would flood to every port. */
function frame(src: string, i: number): Uint8Array {
  const f = new Uint8Array(64);
  f.fill(0xff, 0, 6);
  f.set(src.split(':').map((x) => parseInt(x, 16)), 6);
  f[12] = NON_MEMBER_ETHERTYPE >> 8;
  f[13] = NON_MEMBER_ETHERTYPE & 0xff;
  f.set(new TextEncoder().encode(`non-member frame ${i}`), 14);
  return f;
}

async function main(argv: string[]): Promise<number> {
  const [config, member, countText, src] = argv;
  const count = Number(countText);
  if (!config || !member || !Number.isInteger(count) || count < 1 || !src || !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(src)) {
    process.stderr.write('usage: non-member CONFIG MEMBER_ADDRESS COUNT SOURCE_MAC\n');
    return 2;
  }
  const target = Address.parse(member);
  const overlay = await startOverlay(loadNodeConfig(config), { count: 1, log: createLogger('error'), writeAddress: false });
  try {
    const node = overlay.nodes[0]!;
    await until(() => node.status === 'connected', 30_000, 'joining the ring');
    await Promise.race([node.connector.connectTo(target, 'greedy', 'structured.ondemand'), sleep(20_000)]);
    await until(() => node.table.get(target) !== undefined, 10_000, `a direct connection to ${member}`);
    for (let i = 0; i < count; i++) {
      // Over that connection, like a member's frames: the member sees it came straight from us.
      node.router.send(target, Mode.Exact, Payload.Ethernet, frame(src, i), node.table.get(target)!);
      await sleep(50);
    }
    await sleep(500);
    process.stdout.write(`${JSON.stringify({ sent: count })}\n`);
    return 0;
  } finally {
    await overlay.stop();
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code), (e) => {
  process.stderr.write(`non-member: ${(e as Error).message}\n`);
  process.exit(1);
});
