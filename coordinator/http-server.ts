// The coordinator's HTTP endpoints (--http HOST:PORT): the dashboard page and its files,
// /api/run (everything so far), /api/stream (server-sent events), /metrics (Prometheus),
// /healthz and /readyz. Node's http module; GET and HEAD only; static files from a fixed list,
// never from a path in the request. Plain HTTP: loopback by default (checkHttpListenSecurity).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorMessage, IllegalStateError } from '../common/errors.js';
import type { Logger } from '../common/logging.js';
import { checkHttpListenSecurity, isLoopbackHost, listenHost } from '../common/security.js';
import type { DashboardSource, RunStatusView, StreamMessage } from './dashboard-source.js';

/** The page's own files: `dashboard/` at the package root (beside dist/, no build step). */
export const DASHBOARD_DIR = fileURLToPath(new URL('../../dashboard/', import.meta.url));
const TERMINAL_STATES = new Set(['finished', 'failed', 'closed', 'succeeded', 'stopped']);

export interface DashboardServerOptions {
  /** HOST:PORT; port 0 picks a free one. */
  listen: string;
  /** Allow a non-loopback address (plain HTTP, no authentication). */
  insecure?: boolean;
  source: DashboardSource;
  logger?: Logger;
  /** How often the live stream sends the run's status and worker table. Default 1000 ms. */
  statusIntervalMs?: number;
}

interface StaticFile {
  file: string;
  type: string;
}

function staticFiles(): Map<string, StaticFile> {
  const uplot = path.join(path.dirname(createRequire(import.meta.url).resolve('uplot/package.json')), 'dist');
  return new Map([
    ['/', { file: path.join(DASHBOARD_DIR, 'index.html'), type: 'text/html; charset=utf-8' }],
    ['/index.html', { file: path.join(DASHBOARD_DIR, 'index.html'), type: 'text/html; charset=utf-8' }],
    ['/dashboard.js', { file: path.join(DASHBOARD_DIR, 'dashboard.js'), type: 'text/javascript; charset=utf-8' }],
    ['/dashboard.css', { file: path.join(DASHBOARD_DIR, 'dashboard.css'), type: 'text/css; charset=utf-8' }],
    ['/vendor/uPlot.iife.min.js', { file: path.join(uplot, 'uPlot.iife.min.js'), type: 'text/javascript; charset=utf-8' }],
    ['/vendor/uPlot.min.css', { file: path.join(uplot, 'uPlot.min.css'), type: 'text/css; charset=utf-8' }],
  ]);
}

const SECURITY_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  // uPlot sizes its elements with inline styles.
  'Content-Security-Policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
};

/** "host:port" of a Host header, the host part (brackets kept off IPv6). */
function hostOf(header: string | undefined): string {
  if (header === undefined) return '';
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(header) ?? /^([^:]+)(?::\d+)?$/.exec(header);
  return m?.[1] ?? header;
}

export class DashboardServer {
  private readonly server: http.Server;
  private readonly files = staticFiles();
  private readonly streams = new Set<http.ServerResponse>();
  private readonly loopbackOnly: boolean;
  private statusTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private started = false;

  constructor(private readonly opts: DashboardServerOptions) {
    checkHttpListenSecurity(opts.listen, { insecure: opts.insecure === true });
    this.loopbackOnly = isLoopbackHost(listenHost(opts.listen));
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  /** Listens; resolves with the dashboard's URL (the real port when port 0 was asked for). */
  async start(): Promise<string> {
    if (this.started) throw new IllegalStateError('the dashboard server was started already');
    this.started = true;
    const host = listenHost(this.opts.listen).replace(/^\[(.*)\]$/, '$1');
    const port = Number(this.opts.listen.slice(this.opts.listen.lastIndexOf(':') + 1));
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const actual = (this.server.address() as AddressInfo).port;
    this.statusTimer = setInterval(() => this.broadcastStatus(), this.opts.statusIntervalMs ?? 1000);
    this.statusTimer.unref();
    return `http://${host.includes(':') ? `[${host}]` : host}:${actual}/`;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    // A loopback-only server answers loopback names only: a web page elsewhere cannot reach it
    // through a DNS name that it re-points at 127.0.0.1 (DNS rebinding).
    if (this.loopbackOnly && !isLoopbackHost(hostOf(req.headers.host))) {
      this.send(res, 421, 'text/plain; charset=utf-8', 'misdirected request: use a loopback address\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      this.send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    try {
      switch (url.pathname) {
        case '/healthz':
          this.send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
          return;
        case '/readyz': {
          const ready = this.opts.source.ready();
          this.send(res, ready ? 200 : 503, 'text/plain; charset=utf-8', ready ? 'ready\n' : `not ready (${this.opts.source.status().state})\n`);
          return;
        }
        case '/api/run':
          this.send(res, 200, 'application/json', JSON.stringify(this.opts.source.view()));
          return;
        case '/api/stream':
          this.openStream(req, res);
          return;
        case '/metrics':
          this.serveMetrics(res);
          return;
        default:
          this.serveStatic(url.pathname, res);
      }
    } catch (err) {
      this.opts.logger?.error('dashboard request failed', { path: url.pathname, error: errorMessage(err) });
      if (!res.headersSent) this.send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    }
  }

  private send(res: http.ServerResponse, code: number, type: string, body: string | Buffer): void {
    res.writeHead(code, { ...SECURITY_HEADERS, 'Content-Type': type, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  }

  private serveStatic(pathname: string, res: http.ServerResponse): void {
    const entry = this.files.get(pathname);
    if (!entry) {
      this.send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      return;
    }
    this.send(res, 200, entry.type, readFileSync(entry.file));
  }

  private serveMetrics(res: http.ServerResponse): void {
    const metrics = this.opts.source.metrics;
    if (!metrics) {
      this.send(res, 404, 'text/plain; charset=utf-8', 'no live run to measure (a run directory has no /metrics)\n');
      return;
    }
    metrics.text().then(
      (text) => this.send(res, 200, metrics.contentType, text),
      (err: unknown) => {
        this.opts.logger?.error('collecting metrics failed', { error: errorMessage(err) });
        this.send(res, 500, 'text/plain; charset=utf-8', 'collecting metrics failed\n');
      },
    );
  }

  /** Server-sent events: `step`, `eval`, `event` as they happen, `status` every second, `end` when the run is over. */
  private openStream(req: http.IncomingMessage, res: http.ServerResponse): void {
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    const status = this.opts.source.status();
    this.write(res, { type: 'status', data: status });
    if (!status.live || TERMINAL_STATES.has(status.state)) {
      res.end('event: end\ndata: {}\n\n');
      return;
    }
    this.streams.add(res);
    const unsubscribe = this.opts.source.subscribe((m) => this.write(res, m));
    const done = () => {
      unsubscribe();
      this.streams.delete(res);
    };
    req.on('close', done);
    res.on('error', done);
  }

  private write(res: http.ServerResponse, message: StreamMessage): void {
    if (!res.writableEnded) res.write(`event: ${message.type}\ndata: ${JSON.stringify(message.data)}\n\n`);
  }

  private broadcastStatus(): void {
    if (this.streams.size === 0) return;
    let status: RunStatusView;
    try {
      status = this.opts.source.status();
    } catch (err) {
      this.opts.logger?.warn('dashboard status failed', { error: errorMessage(err) });
      return;
    }
    for (const res of this.streams) {
      this.write(res, { type: 'status', data: status });
      if (TERMINAL_STATES.has(status.state)) {
        res.end('event: end\ndata: {}\n\n');
        this.streams.delete(res);
      }
    }
  }

  /** Stops listening and ends the live streams (idempotent). */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      clearInterval(this.statusTimer);
      for (const res of this.streams) res.end('event: end\ndata: {}\n\n');
      this.streams.clear();
      this.opts.source.close();
      if (!this.started) {
        resolve();
        return;
      }
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closing;
  }
}
