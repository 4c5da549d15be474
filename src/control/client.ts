// Client for the JSON control endpoint, used by crawl (and later bget/bput). One
// keep-alive agent so many requests can be in flight over a few sockets.
import http from 'node:http';
import type { Value } from '../wire/value.js';
import { fromJson } from './json.js';

/** ControlClientError code when nothing listens on the control port (no node running). */
export const NOT_RUNNING = -1;

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
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            const r = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { result?: unknown; error?: { code: number; message: string } };
            if (r.error) reject(new ControlClientError(r.error.code, r.error.message)); else resolve(fromJson(r.result));
          } catch { reject(new ControlClientError(-32700, `bad response (HTTP ${res.statusCode})`)); }
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
