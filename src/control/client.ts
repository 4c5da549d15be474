// Client for the JSON control endpoint, used by crawl (and later bget/bput). One
// keep-alive agent so many requests can be in flight over a few sockets.
import http from 'node:http';
import type { Value } from '../wire/value.js';
import { fromJson } from './json.js';

/** ControlClientError code when nothing listens on the control port (no node running). */
export const NOT_RUNNING = -1;
/** Replies are bounded too: a bigger one is refused, not buffered. */
const MAX_RESPONSE = 64 * 1024 * 1024;

export class ControlClientError extends Error {
  constructor(readonly code: number, message: string) { super(message); }
}

export class ControlClient {
  private agent: http.Agent;
  constructor(readonly port = 10000, readonly host = '127.0.0.1', maxSockets = 32) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  call(method: string, params: unknown[], timeoutMs = 10_000): Promise<Value> {
    const body = JSON.stringify({ method, params });
    return new Promise((resolve, reject) => {
      const req = http.request({ host: this.host, port: this.port, path: '/json', method: 'POST', agent: this.agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size > MAX_RESPONSE) return;
          size += c.length;
          if (size <= MAX_RESPONSE) chunks.push(c);
          else { chunks.length = 0; req.destroy(new ControlClientError(-32700, `response larger than ${MAX_RESPONSE} bytes`)); }
        });
        res.on('end', () => {
          if (res.statusCode === 413) return reject(new ControlClientError(413, `request larger than the control API accepts (${Buffer.byteLength(body)} bytes)`));
          let r: { result?: unknown; error?: { code: number; message: string } };
          try { r = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { return reject(new ControlClientError(-32700, `bad response (HTTP ${res.statusCode})`)); }
          try {
            if (r.error) reject(new ControlClientError(r.error.code, r.error.message)); else resolve(fromJson(r.result));
          } catch (e) { reject(new ControlClientError(-32700, `bad response: ${(e as Error).message}`)); }
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`control API did not answer within ${timeoutMs} ms`)));
      req.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ECONNREFUSED'
        ? new ControlClientError(NOT_RUNNING, `nothing listens on ${this.host}:${this.port} (is run_bootstrap_node running?)`) : e));
      req.end(body);
    });
  }

  localproxy(method: string, ...args: unknown[]): Promise<Value> { return this.call('localproxy', [method, ...args]); }
  proxy(node: string, ahOptions: number, maxResults: number, method: string, ...args: unknown[]): Promise<Value> {
    return this.call('proxy', [node, ahOptions, maxResults, method, ...args]);
  }
  close(): void { this.agent.destroy(); }
}
