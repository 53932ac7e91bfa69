#!/usr/bin/env node
// `mtl`: argument parsing only; the commands live in their modules, loaded when their command
// runs, so that `mtl --help`, a usage error or a NATS command does not load tfjs and the server.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { errorMessage } from '../common/errors.js';
import { createLogger } from '../common/logging.js';
import { aggregatorNames } from '../coordinator/aggregation/registry.js';
import { DEFAULT_MAX_SESSIONS } from '../coordinator/session-defaults.js';
import { BACKEND_CHOICES } from '../worker/backend-choices.js';
import type { coordinatorCommand, runCommand } from './commands.js';
import type { CommonOptions } from './command-support.js';
import type { workerCommand } from './worker-command.js';
import type { ValidateCommandOptions } from './validate-command.js';
import type { PredictCommandOptions } from './predict-command.js';
import type { K8sApplyCommandOptions, K8sRenderCommandOptions, K8sSecretCommandOptions } from './k8s/commands.js';
import type { FetchCommandOptions } from './data-command.js';
import type { cancelCommand, serveCommand, statusCommand, submitCommand } from './control-commands.js';
import type { watchCommand } from './watch-command.js';
import type { certsInitCommand } from './certs.js';
import { unknownCommandError } from './command-check.js';
import type { DashboardCommandOptions } from './dashboard-command.js';
import { EXIT } from './exit-codes.js';
import { grpcSecurityOptions, httpPlaintextOption, insecureOption, natsSecurityOptions } from './security-options.js';
import { dataOptions } from './data-options.js';
import type { DataCommandOptions, DataPutOptions } from './data-command.js';

/** Loads a command module that computes with tfjs, in production mode: no debug checks, and no "install tfjs-node" banner on stderr. */
async function withTf<T>(load: () => Promise<T>): Promise<T> {
  const tf = await import('@tensorflow/tfjs');
  tf.enableProdMode();
  return load();
}

const commands = () => withTf(() => import('./commands.js'));
const controlCommands = () => import('./control-commands.js');

// `mtl status | head`: a reader that goes away is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

function hostPort(value: string): string {
  const i = value.lastIndexOf(':');
  const port = Number(value.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError('expected HOST:PORT');
  return value;
}

const backendOption = () => new Option('--backend <name>', 'compute backend').choices(BACKEND_CHOICES).default('auto');
const logLevelOption = () => new Option('--log-level <level>', 'log verbosity (default: info, or MTL_LOG_LEVEL)').choices(['debug', 'info', 'warn', 'error']);
const aggregatorOption = () => new Option('--aggregator <name>', "aggregation method, replacing the job's training.aggregator").choices(aggregatorNames);
const natsOption = (required = false) => {
  const o = new Option('--nats <url>', 'NATS server of the control plane (nats://host:4222)').env('MTL_NATS_URL');
  if (required) o.makeOptionMandatory();
  return o;
};
const poolOption = () => new Option('--pool <name>', 'worker pool / queue the runs belong to').default('default');
const httpOption = (hostRule = 'a non-loopback host needs --insecure') =>
  new Option('--http <host:port>', `serve the dashboard, /metrics, /healthz and /readyz here (port 0: any free port; ${hostRule})`).argParser(hostPort);
const logFormatOption = () => new Option('--log-format <format>', 'log lines for people or machines').choices(['text', 'json']).default('text');

const program = new Command()
  .name('mtl')
  .description('Distributed multi-task training: a coordinator aggregates per-task gradients from gRPC workers.')
  .version(pkg.version)
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(str) });

program
  .command('run')
  .description('train a job on this machine: a coordinator and N local worker processes, no other service needed')
  .argument('[job]', 'job file (YAML); with --resume, defaults to the run directory\'s job.yaml')
  .option('-w, --workers <n>', 'number of worker processes, one per core (default: 1; with --resume, the count the run had)', positiveInt)
  .option('-o, --out <dir>', 'run directory, new or empty (default: runs/<name>-<time>)')
  .option('--force', "with --out, replace the files of a run already there (job.yaml, metrics, checkpoints, model, ...)", false)
  .addOption(backendOption())
  .addOption(aggregatorOption())
  .option('--json', 'print one JSON summary line at the end', false)
  .option('-q, --quiet', 'no progress output, and warnings and errors only (unless --log-level or MTL_LOG_LEVEL says otherwise)', false)
  .addOption(logLevelOption())
  .addOption(logFormatOption())
  .option('--resume <dir>', 'continue the run in DIR from its latest valid checkpoint (a run that already succeeded is not trained again)')
  .addOption(httpOption('a loopback host only: reach it through an SSH tunnel or port-forward'))
  .addOption(natsOption())
  .addOption(poolOption())
  .action(async (job: string | undefined, opts: Parameters<typeof runCommand>[1]) => {
    process.exitCode = await (await commands()).runCommand(job, opts);
  });

program
  .command('coordinator')
  .description('serve a job to remote workers (mtl worker --coordinator HOST:PORT)')
  .argument('[job]', 'job file (YAML); with --resume, defaults to the run directory\'s job.yaml')
  .requiredOption('-l, --listen <host:port>', 'address to listen on', hostPort)
  .option('-o, --out <dir>', 'run directory, new or empty (default: runs/<name>-<time>)')
  .option('--force', "with --out, replace the files of a run already there (job.yaml, metrics, checkpoints, model, ...)", false)
  .option('-w, --workers <n>', 'start training once this many workers have joined (default: 1; with --resume, the count the run had)', positiveInt)
  .option('--wait-for-workers <seconds>', 'give up if they have not joined after this long', positiveInt, 600)
  .option('--max-sessions <n>', 'most worker connections open at once, joined or not; more are refused', positiveInt, DEFAULT_MAX_SESSIONS)
  .addOption(aggregatorOption())
  .option('--json', 'print one JSON summary line at the end', false)
  .option('-q, --quiet', 'no progress output, and warnings and errors only (unless --log-level or MTL_LOG_LEVEL says otherwise)', false)
  .addOption(logLevelOption())
  .addOption(logFormatOption())
  .option('--resume <dir>', 'continue the run in DIR from its latest valid checkpoint (a run that already succeeded is not trained again)')
  .addOption(httpOption())
  .addOption(natsOption())
  .addOption(poolOption())
  .option('--run-id <id>', 'with --nats: the run\'s id; started again with the same id, the run continues from its newest checkpoint in NATS (a run that ended is not started again)')
  .option('--lease <seconds>', 'with --nats: the run\'s lease; a coordinator replacing a dead one takes over after watching it unrenewed this long', positiveInt, 30)
  .action(async (job: string | undefined, opts: Parameters<typeof coordinatorCommand>[1]) => {
    process.exitCode = await (await commands()).coordinatorCommand(job, opts);
  });

program
  .command('worker')
  .description('compute units for a coordinator, given its address or found through NATS')
  .option('-c, --coordinator <host:port>', 'coordinator address', hostPort)
  .addOption(natsOption())
  .option('--run <run>', 'with --nats: serve this run (waits until it starts, exits when it is over)')
  .option('--pool <name>', 'with --nats: serve whichever running run of this pool needs workers, one after another')
  .addOption(backendOption())
  .option('--name <name>', 'worker name in logs and status (default: host-pid)')
  .option('--connect-timeout <seconds>', 'give up if the coordinator cannot be reached for this long', positiveInt, 30)
  .option('--reconnect-timeout <seconds>', 'after a lost connection, keep trying to get back for this long (0: never)', nonNegativeInt, 300)
  .addOption(new Option('--exit-with-parent', 'exit when stdin closes (used by mtl run)').default(false).hideHelp())
  .addOption(logLevelOption())
  .addOption(logFormatOption())
  .action(async (opts: Parameters<typeof workerCommand>[0]) => {
    // No tfjs here: the worker computes in a thread, which loads it (worker/compute-thread-main.ts).
    process.exitCode = await (await import('./worker-command.js')).workerCommand(opts);
  });

program
  .command('submit')
  .description('queue a job (one run per sweep point) for mtl serve; prints the run ids')
  .argument('<job>', 'job file (YAML)')
  .addOption(natsOption(true))
  .option('--sweep <key=v1,v2>', 'one run per value of a dotted job path; several --sweep make a grid', (v: string, all: string[]) => [...all, v], [] as string[])
  .addOption(poolOption())
  .option('--json', 'one JSON line per run', false)
  .addOption(logLevelOption())
  .action(async (job: string, opts: Parameters<typeof submitCommand>[1] & CommonOptions) => {
    process.exitCode = await (await controlCommands()).submitCommand(job, opts, createLogger({ component: 'submit', level: opts.logLevel ?? 'warn' }));
  });

program
  .command('serve')
  .description('a coordinator pool: pull queued jobs, train them, record the outcome (until SIGTERM)')
  .addOption(natsOption(true))
  .option('-k, --concurrency <n>', 'jobs trained at once', positiveInt, 1)
  .addOption(poolOption())
  .option('-l, --listen <host:port>', 'where coordinators listen for workers (port 0: any; slot i uses port+i); a non-loopback host needs TLS (--tls-*) or --insecure', hostPort, '127.0.0.1:0')
  .option('--advertise <host>', 'host name workers use to reach this process (default: the listen host, or the host name)')
  .option('--out-root <dir>', 'run directories go to DIR/<run id>', 'runs')
  .option('-w, --workers <n>', 'a job starts training once this many workers have joined', positiveInt, 1)
  .option('--wait-for-workers <seconds>', 'an attempt fails (and is retried) if they have not joined after this long', positiveInt, 3600)
  .option('--ack-wait <seconds>', 'a job whose coordinator is silent this long is redelivered', positiveInt, 30)
  .option('--lease <seconds>', 'run lease; renewed every second while the coordinator lives', positiveInt, 30)
  .option('--max-deliver <n>', 'attempts before a failing job is given up', positiveInt, 5)
  .addOption(httpOption())
  .addOption(logLevelOption())
  .addOption(logFormatOption())
  .action(async (opts: Parameters<typeof serveCommand>[0] & CommonOptions) => {
    process.exitCode = await (await withTf(controlCommands)).serveCommand(opts, createLogger({ component: 'serve', level: opts.logLevel, format: opts.logFormat }));
  });

program
  .command('status')
  .description('runs in the registry (all, or one in detail)')
  .argument('[run]', 'run id')
  .addOption(natsOption(true))
  .option('--json', 'JSON lines', false)
  .action(async (run: string | undefined, opts: Parameters<typeof statusCommand>[1]) => {
    process.exitCode = await (await controlCommands()).statusCommand(run, opts, createLogger({ component: 'status', level: 'warn' }));
  });

program
  .command('cancel')
  .description('cancel a queued or running run')
  .argument('<run>', 'run id')
  .addOption(natsOption(true))
  .action(async (run: string, opts: Parameters<typeof cancelCommand>[1]) => {
    process.exitCode = await (await controlCommands()).cancelCommand(run, opts, createLogger({ component: 'cancel', level: 'warn' }));
  });

program
  .command('watch')
  .description("print a run's events and per-step metrics, from its start, live until it ends")
  .argument('<run>', 'run id')
  .addOption(natsOption(true))
  .option('--events', 'events only, no per-step metrics', false)
  .option('--follow', 'keep watching after the run has ended (it may be resumed)', false)
  .option('--all-steps', 'a line for every step (default: about every 5% of the run and every 10 s, the last step and all events)', false)
  .option('--json', 'JSON lines as published: every step and event', false)
  .action(async (run: string, opts: Parameters<typeof watchCommand>[1]) => {
    const { watchCommand: watch } = await import('./watch-command.js');
    process.exitCode = await watch(run, opts, createLogger({ component: 'watch', level: 'warn' }));
  });

const k8s = program.command('k8s').description('Kubernetes objects for a job: render them as YAML, or apply them with your kubeconfig');
const k8sOptions = (cmd: Command) =>
  cmd
    .argument('<job>', 'job file (YAML), stored in a ConfigMap')
    .requiredOption('-w, --workers <n>', 'worker pods (the Indexed Job\'s parallelism); training starts when all have joined', positiveInt)
    .option('--gpus-per-worker <g>', 'nvidia.com/gpu per worker pod; > 0 uses the GPU image and the tensorflow backend', nonNegativeInt, 0)
    .option('--image <image>', 'coordinator and CPU-worker image', `mtl-orchestrator:${pkg.version}`)
    .option('--gpu-image <image>', "GPU-worker image (default: --image's tag + \"-gpu\")")
    .option('-n, --namespace <ns>', 'namespace of every object (default: the kubeconfig context\'s, on apply)')
    .option('--create-namespace', 'also emit the Namespace object', false)
    .option('--name <prefix>', 'prefix of the object names, so several runs can share a namespace', 'mtl')
    .option('--data-volume <pvc[:mount]>', 'a PersistentVolumeClaim holding the job\'s data, mounted read-only in every pod (default mount /mnt/data); the job names its files by absolute paths there')
    .option('--data-cache-size <quantity>', 'size limit of each pod\'s cache of nats:// and http(s):// data (an emptyDir)', '10Gi')
    .option('--format <format>', 'what holds coordinator and workers: jobset (one JobSet, one lifecycle), trainjob (a Kubeflow Trainer TrainJob and its ClusterTrainingRuntime) or plain (two Jobs)', 'jobset')
    .option('--tls <mode>', 'gRPC security: secret (mutual TLS and join token from Secret <name>-tls: mtl k8s secret makes it, apply makes it when missing), cert-manager (Issuers and Certificates; needs cert-manager) or insecure (default: secret)')
    .option('--insecure', 'plaintext gRPC without a join token (the same as --tls insecure): a trusted cluster network only', false)
    .option('--queue <name>', 'Kueue LocalQueue (label kueue.x-k8s.io/queue-name): the run is admitted whole or not at all (jobset, trainjob)')
    .option('--gang <mode>', 'gang scheduling with a coscheduling PodGroup of workers + 1 pods: podgroup (scheduler-plugins\' Coscheduling plugin)')
    .option('--priority-class <name>', 'PriorityClass of the coordinator and worker pods')
    .option('--worker-cpu <quantity>', 'CPU of each worker pod, requests = limits (default: 1, or 2-4 with GPUs)')
    .option('--worker-memory <quantity>', 'memory of each worker pod, requests = limits (default: 1Gi-2Gi, or 4Gi-8Gi with GPUs)')
    .option('--trainer-status-server <url>', 'trainjob: Kubeflow Trainer status server (https://HOST:PORT, e.g. https://kubeflow-trainer-controller-manager.kubeflow-system.svc:10443) the coordinator reports progress to; needs --namespace');
k8sOptions(k8s.command('render').description('print the objects as multi-document YAML (for kubectl apply -f -)'))
  .option('-o, --out <file>', 'write to FILE instead of stdout')
  .action(async (job: string, opts: K8sRenderCommandOptions) => {
    const { k8sRenderCommand } = await import('./k8s/commands.js');
    process.exitCode = k8sRenderCommand(job, opts);
  });
k8sOptions(k8s.command('apply').description('server-side apply the objects through the Kubernetes API ($KUBECONFIG or ~/.kube/config)'))
  .option('--kubeconfig <file>', 'kubeconfig file')
  .option('--context <name>', 'kubeconfig context (default: the current one)')
  .option('--dry-run', 'print what would be applied and contact nothing', false)
  .option('--server-dry-run', 'send the objects for validation and admission, persist nothing', false)
  .action(async (job: string, opts: K8sApplyCommandOptions) => {
    const { k8sApplyCommand } = await import('./k8s/commands.js');
    process.exitCode = await k8sApplyCommand(job, opts);
  });
k8s
  .command('secret')
  .description("print the Secret a run's pods mount for mutual TLS (a new CA, coordinator and worker certificates for the in-cluster names) and the join token, for kubectl apply -f -")
  .option('--name <prefix>', 'the run\'s --name', 'mtl')
  .option('-n, --namespace <ns>', 'namespace of the Secret and of the coordinator Service the certificate names')
  .option('--days <n>', 'validity of the certificates in days', positiveInt, 365)
  .option('-o, --out <file>', 'write to FILE (mode 0600) instead of stdout')
  .action(async (opts: K8sSecretCommandOptions) => {
    const { k8sSecretCommand } = await import('./k8s/commands.js');
    process.exitCode = await k8sSecretCommand(opts);
  });

program
  .command('validate')
  .description('check a job file and its data without training')
  .argument('<job>', 'job file (YAML)')
  .option('--json', 'print the resolved layout as JSON (with the warnings)', false)
  .option('--strict', 'exit 2 on warnings too (a batchSize larger than a task\'s training rows)', false)
  .action(async (job: string, opts: ValidateCommandOptions) => {
    const { validateCommand } = await withTf(() => import('./validate-command.js'));
    process.exitCode = await validateCommand(job, opts);
  });

program
  .command('predict')
  .description("predict from raw rows with a run's model: the run's column transforms are applied, class labels come back as labels")
  .argument('<run-dir>', 'run directory (or its model/ directory)')
  .argument('<input>', 'rows to predict (.csv with a header row, .jsonl or .parquet); rows with the targets also get metrics')
  .option('-o, --out <file>', 'write the predictions (CSV) here instead of stdout')
  .option('--tasks <list>', 'only these tasks (comma-separated)', (v: string) => v.split(',').map((t) => t.trim()).filter((t) => t !== ''))
  .addOption(backendOption())
  .action(async (runDir: string, input: string, opts: PredictCommandOptions) => {
    const { predictCommand } = await withTf(() => import('./predict-command.js'));
    process.exitCode = await predictCommand(runDir, input, opts);
  });

program
  .command('affinity')
  .description('print a run\'s task-affinity matrix (TAG) and the best grouping of its tasks')
  .argument('<run-dir>', 'run directory (reads summary.json, or metrics.jsonl of an unfinished run)')
  .option('--groups <k>', 'also print the best partition of the tasks into K groups', positiveInt)
  .option('--exact', 'use the exact lookahead measurements (diagnostics.exactAffinityEvery) instead of the first-order estimate', false)
  .option('--json', 'one JSON object', false)
  .action(async (runDir: string, opts: { groups?: number; json: boolean; exact: boolean }) => {
    const { affinityCommand } = await import('./affinity-command.js');
    process.exitCode = affinityCommand(runDir, opts);
  });

program
  .command('dashboard')
  .description("serve the dashboard of a finished run directory (metrics.jsonl, eval.jsonl, events.jsonl, summary.json) until Ctrl-C")
  .argument('<run-dir>', 'run directory')
  .addOption(httpOption().default('127.0.0.1:8080'))
  .addOption(new Option('--insecure', 'allow a non-loopback --http address (plain HTTP, no authentication; a trusted network only)').default(false))
  .action(async (runDir: string, opts: DashboardCommandOptions) => {
    const { dashboardCommand } = await import('./dashboard-command.js');
    process.exitCode = await dashboardCommand(runDir, opts);
  });

program
  .command('certs')
  .description('make TLS certificates for mutual TLS between coordinator and workers (with openssl)')
  .command('init')
  .description('create a CA in DIR and sign a coordinator certificate and worker certificate(s) with it')
  .argument('<dir>', 'directory for the keys and certificates (created, mode 0700)')
  .option('--coordinator-san <list>', 'extra subject alternative names of the coordinator certificate, e.g. DNS:coord.example,IP:10.0.0.5 (repeatable; always includes localhost, 127.0.0.1 and ::1)', (v: string, all: string[]) => [...all, v], [] as string[])
  .option('--worker-name <name>', 'make a worker certificate <name>.crt with this common name (repeatable; default: worker)', (v: string, all: string[]) => [...all, v], [] as string[])
  .option('--days <n>', 'validity of the certificates in days', positiveInt, 365)
  .option('--force', 'replace an existing CA and certificates in DIR', false)
  .action(async (dir: string, opts: Parameters<typeof certsInitCommand>[1]) => {
    const { certsInitCommand: init } = await import('./certs.js');
    process.exitCode = await init(dir, opts);
  });

// Transport security flags: the gRPC roles get TLS and the join token (the coordinator also
// --insecure); everything that talks to NATS gets its TLS and credentials flags. `mtl run`
// listens on loopback only and makes its own token.
const SECURITY: Record<string, 'coordinator' | 'worker' | 'nats'> = { run: 'nats', coordinator: 'coordinator', serve: 'coordinator', worker: 'worker', submit: 'nats', status: 'nats', cancel: 'nats', watch: 'nats' };
for (const command of program.commands) {
  const side = SECURITY[command.name()];
  if (side === undefined) continue;
  if (side !== 'nats') for (const o of grpcSecurityOptions(side)) command.addOption(o);
  if (side === 'coordinator') command.addOption(insecureOption()).addOption(httpPlaintextOption());
  for (const o of natsSecurityOptions()) command.addOption(o);
}
// Commands that load a job's data: where its nats:// data comes from, and the local data cache.
for (const command of program.commands) {
  const name = command.name();
  if (name === 'validate') for (const o of natsSecurityOptions()) command.addOption(o);
  if (['run', 'coordinator', 'worker', 'validate', 'serve'].includes(name)) for (const o of dataOptions(name === 'serve' ? 'only' : name !== 'validate')) command.addOption(o);
}

const data = program.command('data').description('datasets in the NATS object store, for jobs that read nats://NAME/path');
const dataCommand = (cmd: Command) => {
  cmd.addOption(natsOption(true)).option('--json', 'JSON lines', false);
  for (const o of natsSecurityOptions()) cmd.addOption(o);
  return cmd;
};
dataCommand(data.command('put').description('store a file or a directory (one object per file, with a manifest of SHA-256 digests); identical content is not sent again'))
  .argument('<path>', 'file or directory')
  .option('--name <name>', 'dataset name (default: the file or directory name without extension)')
  .option('--replace', 'replace a dataset of that name holding other content', false)
  .action(async (source: string, opts: DataPutOptions) => {
    process.exitCode = await (await import('./data-command.js')).dataPutCommand(source, opts);
  });
dataCommand(data.command('ls').description('list the datasets, or the files of one'))
  .argument('[name]', 'dataset name')
  .action(async (name: string | undefined, opts: DataCommandOptions) => {
    process.exitCode = await (await import('./data-command.js')).dataLsCommand(name, opts);
  });
dataCommand(data.command('rm').description('remove a dataset'))
  .argument('<name>', 'dataset name')
  .action(async (name: string, opts: DataCommandOptions) => {
    process.exitCode = await (await import('./data-command.js')).dataRmCommand(name, opts);
  });

const fetch = program
  .command('fetch')
  .description("bring a run's results (summary, metrics, evaluations, events, model) from the NATS object store, where a run with --nats stores them when it ends")
  .argument('<run>', 'run id (mtl status --nats URL lists the runs)')
  .addOption(natsOption(true))
  .option('-o, --out <dir>', 'directory to write them into (default: ./RUN)')
  .option('--force', 'write into a directory that is not empty', false)
  .action(async (run: string, opts: FetchCommandOptions) => {
    process.exitCode = await (await import('./data-command.js')).fetchCommand(run, opts);
  });
for (const o of natsSecurityOptions()) fetch.addOption(o);

program
  .command('timeline')
  .description("export a run's step-time breakdown as a Chrome trace (chrome://tracing, Perfetto)")
  .argument('<run-dir>', 'run directory')
  .option('-o, --out <file>', 'trace file (default: RUN_DIR/timeline.json)')
  .action(async (runDir: string, opts: { out?: string }) => {
    const { timelineCommand } = await import('./timeline-command.js');
    process.exitCode = timelineCommand(runDir, opts);
  });

const unknownCommand = unknownCommandError(program, process.argv.slice(2));
if (unknownCommand !== undefined) {
  process.stderr.write(`${unknownCommand}\n`);
  process.exit(EXIT.usage);
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    process.stderr.write(`mtl: ${errorMessage(err)}\n`);
    if (process.env.MTL_DEBUG) process.stderr.write(`${(err as Error).stack ?? ''}\n`);
    process.exitCode = EXIT.failed;
  }
}
// Open handles (gRPC channels, wasm) must not keep a finished command alive.
process.exit(process.exitCode ?? 0);
