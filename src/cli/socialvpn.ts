#!/usr/bin/env node
// socialvpn: a VPN among friends (SocialVPN). init, id, friend add|remove and friends work
// on the files alone (socialvpn-friends.ts); start|stop|status|run drive the VPN itself.
import { commandOf, runOfflineCommand } from './socialvpn-friends.js';

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const offline = runOfflineCommand(argv, { out: (s) => process.stdout.write(s + '\n'), err: (s) => process.stderr.write(s + '\n') });
  if (offline !== undefined) return offline;
  const cmd = commandOf(argv);
  process.stderr.write(`socialvpn: ${cmd} is not available yet\n`);
  return 1;
}

main().then((c) => process.exit(c), (e) => {
  process.stderr.write(`socialvpn: ${(e as Error).message}\n`);
  process.exit(1);
});
