// socialvpn's commands that need no running VPN: the user key and the friend list.
//   init -c CONFIG --user NAME           creates (or reuses) the user key named in the config
//   id -c CONFIG                         prints this user's friend code, one line
//   friend add -c CONFIG CODE [--name A] lists a friend (alias default: the name in the code)
//   friend remove -c CONFIG ALIAS|CODE   unlists one
//   friends -c CONFIG [--json]           the friend list
// Exit codes: 0 done, 2 bad input (usage, malformed code, own code, name clash), 1 missing
// or corrupt key file, unreadable friend list, other failures.
import { parseArgs } from 'node:util';
import { ConfigError, loadNodeConfig } from '../config/node-config.js';
import type { SocialVpnConfig } from '../config/socialvpn-config.js';
import { encodeFriendCode, userId } from '../vpn/social/friend-code.js';
import { friendsFileIn, FriendList, type Friend } from '../vpn/social/friends.js';
import { SocialError, SocialInputError } from '../vpn/social/social-error.js';
import { UserKey } from '../vpn/social/user-key.js';
import { EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK } from './exit.js';
import { stateDirFor } from './state-dir.js';

export interface CliIo { out: (line: string) => void; err: (line: string) => void }

export const DEFAULT_SOCIAL_CONFIG = 'config/socialvpn.config.xml';
export const SOCIALVPN_USAGE = `usage: socialvpn init -c CONFIG --user NAME
       socialvpn id -c CONFIG
       socialvpn friend add -c CONFIG CODE [--name ALIAS]
       socialvpn friend remove -c CONFIG ALIAS|CODE
       socialvpn friends -c CONFIG [--json]
       socialvpn start|stop|status|run -c CONFIG
  CONFIG defaults to ${DEFAULT_SOCIAL_CONFIG}; the friend list is in CONFIG.data (or --state-dir DIR)`;

const OFFLINE = ['init', 'id', 'friend', 'friends'];
const ONLINE = ['start', 'stop', 'status', 'run'];

class Usage extends Error {}

interface Ctx { cfg: SocialVpnConfig; stateDir: string; values: Values; args: string[]; io: CliIo }
type Values = { config: string; 'state-dir'?: string; user?: string; name?: string; json?: boolean; help?: boolean };

function loadSocial(config: string, stateDir?: string): { cfg: SocialVpnConfig; stateDir: string } {
  const node = loadNodeConfig(config);
  if (!node.socialVpn) throw new ConfigError('SocialVpnConfig', `${config} has no <SocialVpnConfig> section (see config/socialvpn.config.xml)`);
  return { cfg: node.socialVpn, stateDir: stateDirFor(config, stateDir) };
}

function init(c: Ctx): number {
  if (c.args.length !== 0) throw new Usage(`init takes no arguments, got ${c.args.join(' ')}`);
  if (c.values.user === undefined) throw new Usage('init needs --user NAME (your user name: 1-32 of a-z, 0-9, -)');
  const { key, created } = UserKey.loadOrCreate(c.cfg.userKeyFile, c.values.user);
  c.io.out(`user ${key.name}: key ${created ? 'created at' : 'reused from'} ${c.cfg.userKeyFile}`);
  c.io.out(`friend code: ${encodeFriendCode(key.name, key.publicKey)}`);
  return EXIT_OK;
}

function id(c: Ctx): number {
  if (c.args.length !== 0) throw new Usage(`id takes no arguments, got ${c.args.join(' ')}`);
  const key = UserKey.load(c.cfg.userKeyFile);
  c.io.out(encodeFriendCode(key.name, key.publicKey));
  return EXIT_OK;
}

function friend(c: Ctx): number {
  const [sub, target, ...rest] = c.args;
  if (sub !== 'add' && sub !== 'remove') throw new Usage('friend needs add or remove');
  if (target === undefined || rest.length !== 0) throw new Usage(`friend ${sub} takes one ${sub === 'add' ? 'CODE' : 'ALIAS or CODE'}`);
  const key = UserKey.load(c.cfg.userKeyFile);
  const list = FriendList.load(friendsFileIn(c.stateDir), key.publicKey);
  if (sub === 'remove') {
    if (c.values.name !== undefined) throw new Usage('--name is for friend add');
    const gone = list.remove(target);
    c.io.out(`friend ${gone.alias} removed (user ${gone.user}, key id ${userId(gone.publicKey)})`);
    return EXIT_OK;
  }
  const r = list.add(target, c.values.name, Date.now());
  const who = `user ${r.friend.user}, key id ${userId(r.friend.publicKey)}`;
  if (r.change === 'added') c.io.out(`friend ${r.friend.alias} added (${who})`);
  else if (r.change === 'renamed') c.io.out(`friend ${r.previousAlias} renamed to ${r.friend.alias} (${who})`);
  else c.io.out(`friend ${r.friend.alias} already listed (${who})`);
  return EXIT_OK;
}

function friends(c: Ctx): number {
  if (c.args.length !== 0) throw new Usage(`friends takes no arguments, got ${c.args.join(' ')}`);
  const list = FriendList.load(friendsFileIn(c.stateDir)).list();
  if (c.values.json) {
    const rows = list.map((f) => ({ alias: f.alias, user: f.user, key: Buffer.from(f.publicKey).toString('hex'), keyId: userId(f.publicKey), added: f.added }));
    c.io.out(JSON.stringify(rows, null, 2));
    return EXIT_OK;
  }
  if (list.length === 0) {
    c.io.out('no friends yet (add one with: socialvpn friend add -c CONFIG CODE)');
    return EXIT_OK;
  }
  printTable(list, c.io.out);
  return EXIT_OK;
}

function printTable(list: readonly Friend[], out: (s: string) => void): void {
  const rows = [['ALIAS', 'USER', 'KEY ID', 'ADDED'], ...list.map((f) => [f.alias, f.user, userId(f.publicKey), f.added.slice(0, 10)])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) out(r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]!))).join('  '));
}

const VALUED = ['-c', '--config', '--state-dir', '--user', '--name'];

/** The first positional argument (the command), skipping options and their values. */
export function commandOf(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (VALUED.includes(a)) i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/**
 * Runs an offline command; undefined for start|stop|status|run (the caller's), else the
 * exit code, with messages written to `io`.
 */
export function runOfflineCommand(argv: string[], io: CliIo): Promise<number> | undefined {
  const first = commandOf(argv);
  if (first !== undefined && ONLINE.includes(first)) return undefined;
  const fail = (msg: string, code: number) => { io.err(`socialvpn: ${msg}`); return Promise.resolve(code); };
  let values: Values, positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
      config: { type: 'string', short: 'c', default: DEFAULT_SOCIAL_CONFIG }, 'state-dir': { type: 'string' },
      user: { type: 'string' }, name: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    } }) as { values: Values; positionals: string[] });
  } catch (e) { return fail(`${(e as Error).message}\n${SOCIALVPN_USAGE}`, EXIT_BAD_INPUT); }
  if (values.help) { io.out(SOCIALVPN_USAGE); return Promise.resolve(EXIT_OK); }
  const [cmd, ...args] = positionals;
  if (cmd === undefined || !OFFLINE.includes(cmd)) return fail(`${cmd === undefined ? 'no command' : `unknown command ${JSON.stringify(cmd)}`}\n${SOCIALVPN_USAGE}`, EXIT_BAD_INPUT);
  try {
    if (values.user !== undefined && cmd !== 'init') throw new Usage('--user is for init');
    if (values.json && cmd !== 'friends') throw new Usage('--json is for friends');
    if (values.name !== undefined && cmd !== 'friend') throw new Usage('--name is for friend add');
    const { cfg, stateDir } = loadSocial(values.config, values['state-dir']);
    const c: Ctx = { cfg, stateDir, values, args, io };
    const run = { init, id, friend, friends }[cmd as 'init' | 'id' | 'friend' | 'friends'];
    return Promise.resolve(run(c));
  } catch (e) {
    if (e instanceof Usage) return fail(`${e.message}\n${SOCIALVPN_USAGE}`, EXIT_BAD_INPUT);
    if (e instanceof ConfigError || e instanceof SocialInputError) return fail(e.message, EXIT_BAD_INPUT);
    if (e instanceof SocialError) return fail(e.message, EXIT_FAILED);
    return fail((e as Error).message, EXIT_FAILED);
  }
}
