#!/usr/bin/env node
// `npm start`: a 16-node overlay on loopback in this process, then the crawl statistics,
// the same a user gets from run_bootstrap_node + crawl.
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { parseNodeConfig } from '../config/node-config.js';
import { crawl, formatStats } from '../../tools/crawl-lib.js';
import { createLogger } from '../util/log.js';
import { startOverlay } from './overlay.js';

const N = Number(process.env.DEMO_NODES ?? 16);

function freeUdpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}
function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); });
  });
}

async function main(): Promise<void> {
  const [udp, control] = [await freeUdpPort(), await freeTcpPort()];
  const cfg = parseNodeConfig(`<NodeConfig><BrunetNamespace>demo</BrunetNamespace>
    <EdgeListeners><EdgeListener type="udp"><port>${udp}</port></EdgeListener></EdgeListeners>
    <RemoteTAs><Transport>brunet.udp://127.0.0.1:${udp}</Transport></RemoteTAs>
    <XmlRpcManager><Enabled>true</Enabled><Port>${control}</Port></XmlRpcManager>
    <Security><GroupSecret>demo group secret</GroupSecret></Security></NodeConfig>`);
  console.log(`starting ${N} nodes on 127.0.0.1 (bootstrap brunet.udp://127.0.0.1:${udp}, control API port ${control})`);
  const t0 = performance.now();
  const overlay = await startOverlay(cfg, { count: N, bind: '127.0.0.1', log: createLogger('warn') });
  try {
    let stats;
    for (let i = 0; i < 60; i++) {
      await new Promise((r) => setTimeout(r, 500));
      stats = (await crawl({ port: control })).stats;
      if (stats['Total Nodes'] === N && stats.Consistency === 1) break;
    }
    console.log(`ring formed after ${((performance.now() - t0) / 1000).toFixed(1)} s; crawl says:\n`);
    console.log(formatStats(stats!));
    console.log(`\nTry it yourself: bootstrap/bootstrap_demo_prepare.sh P2PNamespace 127.0.0.1 40000 && run_bootstrap_node bootstrap.config --nodes ${N}, then crawl`);
  } finally {
    await overlay.stop();
  }
}

main().catch((e) => { console.error(`demo: ${(e as Error).message}`); process.exit(1); });
