// A TCP transfer between two lab hosts, for the VPN tests: the sender streams `mb` MB of
// pseudo-random bytes to ip:7000 and prints their SHA-256, the receiver prints the byte count
// and SHA-256 of what arrived. Both are plain Node one-liners run inside the namespaces.
import { stopProcess, waitFor, type Lab } from '../../bench/lab/netns.js';

/** What is needed of a lab (Lab, or the NAT lab). */
type Hosts = Pick<Lab, 'spawn' | 'exec' | 'output'>;

const SENDER = `const n=require('net'),c=require('crypto');const h=c.createHash('sha256');let left=Number(process.argv[2])*1024*1024;let seed=c.createHash('sha256').update('x').digest();
const s=n.connect(7000,process.argv[1],()=>{const go=()=>{while(left>0){let b=Buffer.alloc(Math.min(65536,left));for(let i=0;i<b.length;i+=32){seed=c.createHash('sha256').update(seed).digest();seed.copy(b,i)}
h.update(b);left-=b.length;if(!s.write(b))return s.once('drain',go)}s.end(()=>{console.log(h.digest('hex'))})};go()});s.on('error',(e)=>{console.error(e.message);process.exit(1)});`;
const RECEIVER = `const n=require('net'),c=require('crypto');const srv=n.createServer((s)=>{const h=c.createHash('sha256');let k=0;s.on('data',(d)=>{h.update(d);k+=d.length});
s.on('end',()=>{console.log(k+' '+h.digest('hex'));process.exit(0)})});srv.listen(7000,process.argv[1],()=>console.log('listening'));`;

export interface Transfer {
  /** The sender's exit code and stderr. */
  code: number | null;
  stderr: string;
  sentDigest: string;
  receivedBytes: number;
  receivedDigest: string | undefined;
}

/**
 * Sends `mb` MB from host `from` to `ip` (an address of host `to`, where the receiver listens
 * on `listenIp`: the same, unless addresses are translated as in SocialVPN); bounded by timeoutMs.
 */
export async function tcpTransfer(lab: Hosts, from: string, to: string, ip: string, mb: number, timeoutMs: number, listenIp = ip): Promise<Transfer> {
  const rx = lab.spawn(to, [process.execPath, '-e', RECEIVER, listenIp]);
  await waitFor(() => /listening/.test(lab.output(rx)), 10_000, 'receiver');
  const tx = await lab.exec(from, [process.execPath, '-e', SENDER, ip, String(mb)], { timeoutMs });
  await waitFor(() => / [0-9a-f]{64}/.test(lab.output(rx)), 20_000, 'receiver done').catch(() => {});
  // A receiver that never saw the stream end would stay, and fail later checks that its host is clean.
  await stopProcess(rx);
  const [bytes, digest] = lab.output(rx).trim().split('\n').pop()!.split(' ');
  return { code: tx.code, stderr: tx.stderr, sentDigest: tx.stdout.trim(), receivedBytes: Number(bytes), receivedDigest: digest };
}
