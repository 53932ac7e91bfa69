// A TCP proxy between workers and their coordinator that a test can cut or slow down: what a
// flaky network does to gRPC connections, with real sockets.
import net from 'node:net';

export class TcpProxy {
  private readonly server: net.Server;
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  /** Extra delay applied to every chunk, in ms. */
  delayMs = 0;
  /** A pause after each chunk before the next is read (0: none): limits throughput, so a transfer lasts long enough to be cut. */
  throttleMs = 0;
  /** While true, new connections are refused (closed at once). */
  refusing = false;
  cuts = 0;

  private constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => this.accept(client));
  }

  static async start(target: string): Promise<TcpProxy> {
    const i = target.lastIndexOf(':');
    const proxy = new TcpProxy({ host: target.slice(0, i), port: Number(target.slice(i + 1)) });
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get address(): string {
    const a = this.server.address() as net.AddressInfo;
    return `127.0.0.1:${a.port}`;
  }

  private accept(client: net.Socket): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.target.port, this.target.host);
    const pair: [net.Socket, net.Socket] = [client, upstream];
    this.pairs.add(pair);
    const forward = (from: net.Socket, to: net.Socket) =>
      from.on('data', (chunk: Buffer) => {
        if (this.delayMs > 0) setTimeout(() => to.write(chunk), this.delayMs);
        else to.write(chunk);
        if (this.throttleMs > 0) {
          from.pause();
          setTimeout(() => from.resume(), this.throttleMs);
        }
      });
    forward(client, upstream);
    forward(upstream, client);
    const close = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  }

  /** Drops every open connection, as a network cut would (both ends see a reset). */
  cutAll(): number {
    const n = this.pairs.size;
    for (const [a, b] of this.pairs) {
      a.resetAndDestroy();
      b.resetAndDestroy();
    }
    this.pairs.clear();
    this.cuts += n;
    return n;
  }

  close(): Promise<void> {
    this.cutAll();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A port that was free a moment ago (for processes that must come back on the same address). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
