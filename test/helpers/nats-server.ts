// A real nats-server for a test file: its own free port, JetStream in a temporary directory,
// stopped (and its data removed) when the test process exits. `restart()` brings it back on
// the same port with the same store, for outage tests.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { requireTool } from './system-tools.js';
import { tempDir } from './temp-dirs.js';

/** The nats-server binary: $NATS_SERVER, else the first on PATH or in the sbin directories. */
export function natsServerBinary(): string {
  return requireTool('nats-server');
}

/** A TCP port free on 127.0.0.1 (taken from the OS, then released): nothing listens on it until someone binds it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** TLS for the server: its certificate and key, and (with verify) the CA client certificates must chain to. */
export interface NatsServerTls {
  cert: string;
  key: string;
  ca: string;
  verify: boolean;
}

export class NatsServer {
  private child: ChildProcess | undefined;
  private log = '';

  private constructor(
    readonly port: number,
    readonly storeDir: string,
    private readonly tls?: NatsServerTls,
  ) {}

  static async start(options: { tls?: NatsServerTls } = {}): Promise<NatsServer> {
    const server = new NatsServer(await freePort(), tempDir('mtl-nats-'), options.tls);
    await server.launch();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  private async launch(): Promise<void> {
    const tls = this.tls ? ['--tls', '--tlscert', this.tls.cert, '--tlskey', this.tls.key, '--tlscacert', this.tls.ca, ...(this.tls.verify ? ['--tlsverify'] : [])] : [];
    const child = spawn(natsServerBinary(), ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir, ...tls], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    running.add(child);
    child.once('exit', () => running.delete(child));
    child.stdout?.on('data', (d: Buffer) => (this.log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.log += d.toString()));
    const deadline = Date.now() + 10_000;
    while (!(await portOpen(this.port))) {
      if (child.exitCode !== null) throw new Error(`nats-server exited with code ${child.exitCode}:\n${this.log}`);
      if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${this.port} within 10 s:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and waits until it is gone. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }

  /** Stops and starts again on the same port with the same JetStream store. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }
}
