#!/usr/bin/env node
// socialvpn: a VPN among friends (SocialVPN). init, id, friend add|remove and friends work
// on the files alone (socialvpn-friends.ts); start|stop|status|run drive the VPN itself
// (the commands groupvpn has, vpn-command.ts; the program in social-program.ts), loaded only then.
import { fileURLToPath } from 'node:url';
import { runOfflineCommand } from './socialvpn-friends.js';

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const offline = runOfflineCommand(argv, { out: (s) => process.stdout.write(s + '\n'), err: (s) => process.stderr.write(s + '\n') });
  if (offline !== undefined) return offline;
  const [{ vpnCommand }, { socialvpn }] = await Promise.all([import('./vpn-command.js'), import('./social-program.js')]);
  return vpnCommand(socialvpn(fileURLToPath(import.meta.url)), argv);
}

main().then((c) => { if (c >= 0) process.exit(c); }, (e) => {
  process.stderr.write(`socialvpn: ${(e as Error).stack}\n`);
  process.exit(1);
});
