// `mtl worker`: connects to a coordinator (or finds one in the NATS registry) and computes its
// units in a compute thread. Kept apart from the coordinator's commands: this process itself
// never loads tfjs or the coordinator (the thread does the computing).
import { EXIT } from './exit-codes.js';
import { logger, trapSignals, type CommonOptions } from './command-support.js';
import { materializeOptions, type DataFlags } from './data-options.js';
import { loadGrpcSecurity, loadNatsFlags, type GrpcSecurityFlags, type NatsSecurityFlags } from './security-options.js';
import type { BackendChoice } from '../worker/backend-choices.js';
import { Worker } from '../worker/worker.js';

export interface WorkerCommandOptions extends CommonOptions, GrpcSecurityFlags, NatsSecurityFlags, DataFlags {
  coordinator?: string;
  /** Find the coordinator in the run registry instead (with run or pool). */
  nats?: string;
  run?: string;
  pool?: string;
  backend: BackendChoice;
  name?: string;
  connectTimeout: number;
  reconnectTimeout: number;
  exitWithParent: boolean;
}

export async function workerCommand(opts: WorkerCommandOptions): Promise<number> {
  if ((opts.coordinator === undefined) === (opts.nats === undefined)) {
    process.stderr.write('give the coordinator address (--coordinator HOST:PORT) or a NATS server to find it (--nats URL with --run or --pool)\n');
    return EXIT.usage;
  }
  const security = loadGrpcSecurity(opts);
  if (!security) return EXIT.usage;
  const natsSecurity = opts.nats === undefined && opts.dataNats === undefined ? {} : loadNatsFlags(opts);
  if (!natsSecurity) return EXIT.usage;
  // The job's nats:// and http(s):// data, fetched when a Welcome names it.
  const data = materializeOptions(opts, logger('data', opts), { url: opts.nats, security: natsSecurity });
  if (opts.nats !== undefined) {
    const { discoveryWorkerCommand } = await import('./control-commands.js');
    return discoveryWorkerCommand({ ...opts, nats: opts.nats, security, natsSecurity, data }, logger('worker', opts), (onStop) => {
      const signals = trapSignals(
        () => onStop(true),
        () => onStop(false),
      );
      return () => signals.release();
    });
  }
  const worker = new Worker({
    coordinator: opts.coordinator,
    backend: opts.backend,
    name: opts.name,
    connectTimeoutMs: opts.connectTimeout * 1000,
    reconnectTimeoutMs: opts.reconnectTimeout * 1000,
    ...security,
    data,
    logger: logger('worker', opts),
  });
  if (opts.exitWithParent) {
    // Our parent (mtl run) holds the other end of stdin: when it dies, the pipe closes.
    process.stdin.on('end', () => void worker.close(1, 'parent process exited'));
    process.stdin.on('error', () => void worker.close(1, 'parent process exited'));
    process.stdin.resume();
  }
  // The first SIGTERM/SIGINT leaves gracefully: the current unit is finished and sent, the
  // queued ones handed back, exit 0. A second one stops at once.
  const signals = trapSignals(
    (sig) => void worker.leave(`received ${sig}`),
    () => void worker.close(1, 'second signal'),
  );
  const exit = await worker.run();
  signals.release();
  if (exit.code !== 0) process.stderr.write(`worker ${opts.name ?? ''} stopped: ${exit.reason}\n`);
  return exit.code;
}
