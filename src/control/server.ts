// The local control API (loopback only) on the XmlRpcManager port. XML-RPC at /xm.rem
// (the first node), /<brunet:node:…> (any node of this process) and /xmserver.rem
// (listNodes), with Brunet's localproxy/proxy so its Python tools work unchanged; a JSON
// endpoint at /json for our own tools; and the web view (GET /, /api/*: web/web-view.ts).
import http from 'node:http';
import { Address } from '../address/address.js';
import type { Node } from '../node/node.js';
import { Mode } from '../routing/ah-wire.js';
import { RpcError } from '../rpc/rpc-manager.js';
import { RpcCode } from '../rpc/rpc-wire.js';
import type { Value } from '../wire/value.js';
import { parseMethodCall, serializeFault, serializeResponse, XmlRpcError, type XrValue } from './xmlrpc.js';
import { fromJson, JsonDepthError, toJson } from './json.js';
import { refuseForeignHost, WebView, type WebServices } from './web/web-view.js';
import type { OverlayMetrics } from './metrics.js';

const MAX_BODY = 4 * 1024 * 1024;
const PROXY_TIMEOUT_MS = 5000;

export class ControlError extends Error {
  constructor(readonly code: number, message: string) { super(message); }
}

/** Brunet's ahOptions numbers → our routing modes (Last and Annealing map to the nearest we have). */
function modeOf(ah: Value): Mode {
  switch (ah) {
    case 0: case 4: return Mode.Closest;
    case 1: case 3: return Mode.Greedy;
    case 5: return Mode.Exact;
    default: throw new ControlError(RpcCode.BadParams, `unsupported ahOptions ${JSON.stringify(ah)} (use 0 closest, 3 greedy, 5 exact)`);
  }
}

export class ControlServer {
  private server?: http.Server;
  /** Serves GET /metrics (Prometheus) when set. */
  metrics?: OverlayMetrics;
  /** The web view: GET / and its JSON (web/web-view.ts). */
  readonly web: WebView;
  constructor(private readonly nodes: Node[], readonly port: number, readonly host = '127.0.0.1', services: WebServices = {}) {
    this.web = new WebView(nodes, services);
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = http.createServer((req, res) => void this.handle(req, res));
      s.keepAliveTimeout = 30_000;
      s.once('error', (e: NodeJS.ErrnoException) =>
        reject(new Error(`control API port ${this.port}: ${e.code === 'EADDRINUSE' ? 'address already in use' : e.message}`)));
      s.listen(this.port, this.host, () => { this.server = s; this.web.start(); resolve(); });
    });
  }

  stop(): Promise<void> {
    this.web.stop();
    return new Promise((r) => { if (!this.server) return r(); this.server.closeAllConnections?.(); this.server.close(() => r()); });
  }

  /** Runs a control method on one node: the heart of both endpoints. */
  async dispatch(node: Node | undefined, method: string, params: Value[]): Promise<Value> {
    if (method === 'listNodes') return this.nodes.map((n) => n.address.key);
    if (!node) throw new ControlError(RpcCode.NoHandler, 'no such node in this process');
    if (method === 'localproxy') {
      const [m, ...args] = params;
      if (typeof m !== 'string') throw new ControlError(RpcCode.BadParams, 'localproxy(method, args...): method must be a string');
      return node.rpc.callLocal(m, args);
    }
    if (method === 'proxy') {
      const [dest, ah, max, m, ...args] = params;
      if (typeof dest !== 'string' || typeof m !== 'string' || typeof max !== 'number')
        throw new ControlError(RpcCode.BadParams, 'proxy(nodeAddress, ahOptions, maxResults, method, args...)');
      let address: Address;
      try { address = Address.parse(dest); } catch (e) { throw new ControlError(RpcCode.BadParams, (e as Error).message); }
      return node.rpc.invoke({ address, mode: modeOf(ah ?? null) }, m, args, { maxResults: max > 0 ? max : 16, timeoutMs: PROXY_TIMEOUT_MS });
    }
    throw new ControlError(RpcCode.NoHandler, `unknown control method ${method} (localproxy, proxy, listNodes)`);
  }

  private nodeFor(path: string): Node | undefined {
    if (path === '/xm.rem' || path === '/json' || path === '/') return this.nodes[0];
    const name = decodeURIComponent(path.slice(1)).replace(/\.rem$/, '');
    // Brunet (testing branch) exports nodes as <realm>:<address>; accept both forms.
    const addr = name.slice(name.toLowerCase().lastIndexOf('brunet:node:'));
    return this.nodes.find((n) => n.address.key.toLowerCase() === addr.toLowerCase());
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (this.web.handles(req.method, url.pathname)) return this.web.serve(req, url, res);
    if (req.method === 'GET' && url.pathname === '/metrics' && this.metrics) return void (refuseForeignHost(req, res) && this.metrics.serve(res));
    if (req.method !== 'POST') {
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'POST' });
      return void res.end('POST XML-RPC to /xm.rem or JSON to /json\n');
    }
    let body: Buffer | undefined;
    try { body = await readBody(req); } catch { return void req.destroy(); } // the client went away
    if (body === undefined) {
      // Answer before the rest arrives; the connection closes after this reply.
      res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' });
      return void res.end(`request body larger than ${MAX_BODY} bytes\n`, () => req.destroy());
    }
    const json = url.pathname === '/json' || url.pathname.startsWith('/json/');
    if (json) return this.handleJson(url, body, res);
    let out: string;
    try {
      const call = parseMethodCall(utf8(body));
      const node = url.pathname === '/xmserver.rem' ? this.nodes[0] : this.nodeFor(url.pathname);
      const result = await this.dispatch(node, call.method, call.params as Value[]);
      out = serializeResponse(result as XrValue);
    } catch (e) {
      out = serializeFault(faultCode(e), (e as Error).message);
    }
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.end(out);
  }

  private async handleJson(url: URL, body: Buffer, res: http.ServerResponse): Promise<void> {
    let out: unknown;
    try {
      let req: { node?: string; method?: string; params?: unknown[] };
      const text = utf8(body);
      try { req = JSON.parse(text); } catch { throw new ControlError(RpcCode.NotAList, 'request body is not JSON'); }
      if (!req || typeof req.method !== 'string' || (req.params !== undefined && !Array.isArray(req.params)))
        throw new ControlError(RpcCode.NotAList, 'expected {"method": string, "params": [...], "node"?: address}');
      const node = req.node ? this.nodeFor('/' + req.node) : this.nodeFor(url.pathname);
      const result = await this.dispatch(node, req.method, (req.params ?? []).map((p) => fromJson(p)));
      out = { result: toJson(result) };
    } catch (e) {
      out = { error: { code: faultCode(e), message: (e as Error).message } };
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(out));
  }
}

function faultCode(e: unknown): number {
  if (e instanceof RpcError || e instanceof ControlError) return e.code;
  if (e instanceof XmlRpcError || e instanceof JsonDepthError) return RpcCode.NotAList;
  return RpcCode.Remote;
}

/** The body (at most MAX_BODY + 1 bytes are read), or undefined when it is larger. */
function readBody(req: http.IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    if (Number(req.headers['content-length'] ?? 0) > MAX_BODY) return resolve(undefined);
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer): void => {
      size += c.length;
      if (size > MAX_BODY) { req.off('data', onData); req.pause(); resolve(undefined); return; }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

/** Request text; invalid UTF-8 is refused, not replaced. */
function utf8(body: Buffer): string {
  try { return new TextDecoder('utf-8', { fatal: true }).decode(body); } catch {
    throw new ControlError(RpcCode.NotAList, 'request body is not valid UTF-8');
  }
}
