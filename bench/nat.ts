// `npm run bench:nat` (root): the overlay across cone and symmetric NATs in the NAT lab
// (bench/lab/nat.ts). Prints
//   1. how long a cone–cone pair takes from first contact to a direct UDP path;
//   2. how the NAT'd nodes' cross-NAT pairs talk once linked: direct, relayed or not at all;
//   3. RPC throughput over a direct and over a relayed path (1 KB sys:link.Ping payloads,
//      32 in flight, routed in exact mode from one member's control API to another node);
//   4. how long a NAT'd node takes to be reachable again after its address changes;
//   5. the same after its NAT router's public address changes.
// "Direct" is observed, not asked: an iptables rule in the sender's NAT router counts the
// packets sent straight to the peer's public address; relayed packets go to a forwarder.
import { MEMBERS, NatLab, natLabUnavailableReason, startNatOverlay } from './lab/nat.js';
import { stopProcess, waitFor } from './lab/netns.js';

const KB = 'x'.repeat(1024);
const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function main(): Promise<number> {
  const why = natLabUnavailableReason();
  if (why) { process.stderr.write(`bench:nat: ${why}\n`); return 2; }
  const t00 = Date.now();
  const lab = await NatLab.create('natbench');
  try {
    const ring = await startNatOverlay(lab, { bootNodes: 4, timeoutMs: 45_000 });
    const c = await lab.crawl();
    console.log(`ring: ${c?.stats['Total Nodes']}/${ring.total} nodes, Consistency ${c?.stats.Consistency} after ${fmt(ring.waitMs)}; ` +
      `edges udp ${c?.stats.UdpEdges}, tcp ${c?.stats.TcpEdges}, relay ${c?.stats.RelayEdges}`);
    const info = new Map(await Promise.all(['boot', ...MEMBERS].map(async (h) => [h, await lab.nodeInfo(h)] as const)));
    const addr = (h: string) => info.get(h)!.address;
    const ping = (to: string, n: number, payload = '', timeoutMs = 5000) =>
      Array.from({ length: n }, (_, k) => ({ m: 'proxy', p: [addr(to), 5, 1, 'sys:link.Ping', payload || `p${k}`], timeoutMs }));
    /** n pings from→to: how many answered, and how many packets went straight to to's NAT. */
    const probe = async (from: string, to: string, n = 10) => {
      const d0 = await lab.directMessages(from, to);
      const r = await lab.rpc(from, ping(to, n));
      return { ok: r.filter((x) => x.ok).length, direct: (await lab.directMessages(from, to)) - d0 };
    };

    // 1. First contact to a direct path, cone–cone: c2b's node is restarted (same address,
    // fresh state) so that c1b and c2b start out unlinked, then both are asked to link.
    const [ca, cb] = ['c1b', 'c2b'];
    const kindTo = async (from: string, to: string) => (await lab.call(from, 'localproxy', ['ConnectionTable.GetConnections']) as Array<{ address: string; kind: string }>)
      .find((c) => c.address === addr(to))?.kind;
    await stopProcess(ring.procs.get(cb)!);
    await waitFor(async () => (await kindTo(ca, cb)) === undefined, 40_000, `${ca} to notice ${cb} is gone`, 500);
    lab.startNode(cb);
    await waitFor(() => lab.call(cb, 'localproxy', ['sys:link.Ping', 1], 2000).then(() => true, () => false), 20_000, `${cb} restarted`, 200);
    const before = await kindTo(ca, cb);
    await lab.directMessages(ca, cb);
    const t2 = Date.now();
    await lab.forceLink(ca, cb);
    const direct = await waitFor(async () => (await kindTo(ca, cb)) === 'udp' && (await probe(ca, cb, 5)).direct >= 5, 40_000, 'direct', 250).then(() => Date.now() - t2, () => undefined);
    console.log(`\n1. cone–cone ${ca}–${cb} (${cb} restarted; ${before ? `already linked over ${before} when asked` : 'not linked when asked'}): ` +
      `${direct === undefined ? 'no direct path within 40 s' : `direct UDP edge carrying the traffic ${fmt(direct)} after the link request`}`);

    // 2. Cross-NAT pairs (pairs on one LAN talk over it, unseen by the routers).
    const NATTED = MEMBERS.filter((h) => lab.routerOf(h));
    const pairs: Array<[string, string]> = [];
    for (const [i, a] of NATTED.entries()) for (const b of NATTED.slice(i + 1)) if (lab.routerOf(a) !== lab.routerOf(b)) pairs.push([a, b]);
    await Promise.all(pairs.flatMap(([a, b]) => [lab.directMessages(a, b), lab.directMessages(b, a)]));
    const tLink = Date.now();
    await Promise.all(pairs.map(([a, b]) => lab.forceLink(a, b)));
    console.log(`\n2. ${pairs.length} cross-NAT pairs linked on request (sys:ctm.ConnectTo both ways) in ${fmt(Date.now() - tLink)}`);
    const kinds = { direct: 0, relayed: 0, failed: 0 };
    const byType = new Map<string, typeof kinds>();
    for (const [a, b] of pairs) {
      const r = await probe(a, b);
      const k = r.ok < 10 ? 'failed' : r.direct >= 10 ? 'direct' : 'relayed';
      kinds[k]++;
      const type = [lab.kind(a), lab.kind(b)].sort().join('–');
      const e = byType.get(type) ?? { direct: 0, relayed: 0, failed: 0 };
      e[k]++;
      byType.set(type, e);
    }
    const pct = (n: number) => `${((100 * n) / pairs.length).toFixed(0)} %`;
    console.log(`   direct ${kinds.direct} (${pct(kinds.direct)}), relayed ${kinds.relayed} (${pct(kinds.relayed)}), failed ${kinds.failed} (${pct(kinds.failed)})`);
    for (const [type, e] of byType) console.log(`   ${type.padEnd(10)} direct ${e.direct}, relayed ${e.relayed}, failed ${e.failed}`);

    // 3. Throughput: 1 KB Pings, 32 in flight, 3 s, over a direct and over a relayed path.
    const pick = (want: 'direct' | 'relayed') => (async () => {
      // Without a direct cross-NAT pair, a NAT'd node to a public one (UDP out through the NAT) is the direct reference.
      for (const [a, b] of want === 'direct' ? [...pairs, ['c1a', 'pub'] as [string, string]] : pairs) {
        const r = await probe(a, b, 5);
        // The connection's edge kind as the node reports it (ConnectionTable.GetConnections).
        const conns = await lab.call(a, 'localproxy', ['ConnectionTable.GetConnections']) as Array<{ address: string; kind: string }>;
        const kind = conns.find((c) => c.address === addr(b))?.kind;
        if (r.ok === 5 && (want === 'direct' ? r.direct >= 5 && kind === 'udp' : r.direct === 0 && kind === 'tunnel')) return [a, b] as const;
      }
      return undefined;
    })();
    const rate = async (a: string, b: string) => {
      const [r] = await lab.rpc(a, [{ ...ping(b, 1, KB, 5000)[0]!, repeatMs: 3000, par: 32 }], 30_000);
      return { perSec: (r!.count ?? 0) / (r!.ms / 1000), failed: r!.failed ?? 0 };
    };
    console.log('\n3. throughput: 1 KB sys:link.Ping RPCs (1 KB each way), 32 in flight, 3 s');
    const res: Record<string, number> = {};
    for (const want of ['direct', 'relayed'] as const) {
      const p = await pick(want);
      if (!p) { console.log(`   ${want.padEnd(8)} no such pair among the cross-NAT pairs`); continue; }
      const r = await rate(p[0], p[1]);
      res[want] = r.perSec;
      console.log(`   ${want === 'direct' ? 'direct UDP edge ' : 'relay edge      '} ${p[0]}→${p[1]}: ${r.perSec.toFixed(0)} RPC/s = ${(r.perSec * 2).toFixed(0)} KB/s both ways${r.failed ? ` (${r.failed} failed)` : ''}`);
    }
    if (res.direct && res.relayed) console.log(`   relayed / direct = ${(res.relayed / res.direct).toFixed(2)}`);

    // 4. Address change of a NAT'd node: time until it reaches, and is reached by, boot and pub again.
    const mover = 'c1a', peers = ['boot', 'pub'];
    await lab.changeAddress(mover, '10.151.1.99');
    const t4 = Date.now();
    const recovered = (who: string, since: number) => waitFor(async () => {
      const rs = await Promise.all([lab.rpc(who, peers.flatMap((h) => ping(h, 1, '', 1500))), ...peers.map((h) => lab.rpc(h, ping(who, 1, '', 1500)))]);
      return rs.flat().every((r) => r.ok);
    }, 40_000, 'recovery', 250).then(() => Date.now() - since, () => undefined);
    const healed = await recovered(mover, t4);
    console.log(`\n4. ${mover} moved to 10.151.1.99: ${healed === undefined ? 'not reachable both ways within 40 s' : `reachable both ways again after ${fmt(healed)}`}`);

    // 5. The NAT in front of c1b gets another public address (its mappings die with the old one).
    await lab.changeRouterAddress('cone1', '10.150.0.31');
    const t5 = Date.now();
    const healed5 = await recovered('c1b', t5);
    console.log(`\n5. cone1 re-addressed to 10.150.0.31: c1b ${healed5 === undefined ? 'not reachable both ways within 40 s' : `reachable both ways again after ${fmt(healed5)}`}`);
    console.log(`\ntotal ${fmt(Date.now() - t00)}`);
    return 0;
  } finally {
    await lab.destroy();
  }
}

main().then((c) => process.exit(c), (e) => { process.stderr.write(`bench:nat: ${(e as Error).stack}\n`); process.exit(1); });
