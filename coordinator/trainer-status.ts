// Progress in a Kubeflow TrainJob's status: when the coordinator runs under Kubeflow Trainer
// (v2.2+, feature gate TrainJobStatus), Trainer's status server takes
//   POST {KUBEFLOW_TRAINER_SERVER_URL}   (…/namespaces/NS/trainjobs/NAME/status)
//   Authorization: Bearer <the projected token in KUBEFLOW_TRAINER_SERVER_TOKEN's file>
//   {"trainerStatus": {"progressPercentage", "estimatedRemainingSeconds", "metrics": [{name, value}], "lastUpdatedTime"}}
// over TLS whose CA is KUBEFLOW_TRAINER_SERVER_CA_CERT, and writes it to status.trainerStatus.
// Reporting never gets in the way of training: at most one request at a time and one per
// interval (the latest step wins), failures logged and dropped.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { errorMessage } from '../common/errors.js';
import type { Logger } from '../common/logging.js';

export const TRAINER_STATUS_ENV = { url: 'KUBEFLOW_TRAINER_SERVER_URL', ca: 'KUBEFLOW_TRAINER_SERVER_CA_CERT', token: 'KUBEFLOW_TRAINER_SERVER_TOKEN' } as const;
/** Trainer's guidance: at most one update every 5 s. */
export const TRAINER_STATUS_INTERVAL_MS = 5000;
const REQUEST_TIMEOUT_MS = 5000;
/** The API's limits: 256 metrics, names and values of 1 to 64 characters. */
const MAX_METRICS = 256;
const MAX_CHARS = 64;

export interface TrainerStatusTarget {
  url: string;
  /** PEM file of the CA that signed the status server's certificate (default: the system's CAs). */
  caFile?: string;
  /** File holding the bearer token; read for every request, since the kubelet rotates it. */
  tokenFile?: string;
}

/** The target from the environment Trainer sets; undefined when KUBEFLOW_TRAINER_SERVER_URL is unset. */
export function trainerStatusTarget(env: NodeJS.ProcessEnv = process.env): TrainerStatusTarget | undefined {
  const url = env[TRAINER_STATUS_ENV.url];
  if (url === undefined || url === '') return undefined;
  const ca = env[TRAINER_STATUS_ENV.ca];
  const token = env[TRAINER_STATUS_ENV.token];
  return { url, ...(ca ? { caFile: ca } : {}), ...(token ? { tokenFile: token } : {}) };
}

export interface TrainerStatus {
  progressPercentage: number;
  estimatedRemainingSeconds?: number;
  metrics: Array<{ name: string; value: string }>;
  lastUpdatedTime: string;
}

/** The status of a run at `step` of `totalSteps`; the estimate from the pace since `firstStep` (`elapsedMs` ago). */
export function trainerStatus(p: { step: number; totalSteps: number; losses: Record<string, number>; firstStep: number; elapsedMs: number; now: Date }): TrainerStatus {
  const progressPercentage = Math.max(0, Math.min(100, Math.floor((p.step / p.totalSteps) * 100)));
  const done = p.step - p.firstStep;
  const remaining = p.totalSteps - p.step;
  const estimate = done > 0 && p.elapsedMs > 0 && remaining >= 0 ? Math.round(((p.elapsedMs / done) * remaining) / 1000) : undefined;
  const cut = (s: string) => s.slice(0, MAX_CHARS);
  const metrics = [{ name: 'step', value: `${p.step}/${p.totalSteps}` }];
  for (const [task, loss] of Object.entries(p.losses)) {
    if (metrics.length >= MAX_METRICS) break;
    if (Number.isFinite(loss)) metrics.push({ name: cut(`loss/${task}`), value: cut(String(loss)) });
  }
  return { progressPercentage, ...(estimate !== undefined && estimate <= 2 ** 31 - 1 ? { estimatedRemainingSeconds: estimate } : {}), metrics, lastUpdatedTime: p.now.toISOString() };
}

export interface TrainerStatusReporterOptions {
  totalSteps: number;
  logger: Logger;
  intervalMs?: number;
  now?: () => number;
}

export class TrainerStatusReporter {
  private readonly intervalMs: number;
  private readonly now: () => number;
  private lastSentMs = -Infinity;
  private inFlight: Promise<void> | undefined;
  private pending: TrainerStatus | undefined;
  private firstStep: number | undefined;
  private startMs = 0;
  private warned = false;
  /** Requests the server answered with 2xx, and those that failed. */
  sent = 0;
  failed = 0;

  constructor(
    private readonly target: TrainerStatusTarget,
    private readonly opts: TrainerStatusReporterOptions,
  ) {
    this.intervalMs = opts.intervalMs ?? TRAINER_STATUS_INTERVAL_MS;
    this.now = opts.now ?? Date.now;
  }

  /** A step ended: reported now if the interval has passed, else kept for the next chance. */
  step(step: number, losses: Record<string, number>): void {
    const now = this.now();
    if (this.firstStep === undefined) {
      // The pace from the steps after the first this process saw (a resumed run starts at its
      // checkpoint's step, and the first step includes the start-up).
      this.firstStep = step;
      this.startMs = now;
    }
    this.pending = trainerStatus({ step, totalSteps: this.opts.totalSteps, losses, firstStep: this.firstStep, elapsedMs: now - this.startMs, now: new Date(now) });
    if (this.inFlight === undefined && now - this.lastSentMs >= this.intervalMs) this.flush();
  }

  /** Resolves when no request is under way. */
  async settled(): Promise<void> {
    await this.inFlight;
  }

  /** The run ended: its last status goes out whatever the interval (100 % when it succeeded). */
  async finish(final?: { succeeded: boolean }): Promise<void> {
    await this.inFlight;
    if (final?.succeeded && this.pending) this.pending = { ...this.pending, progressPercentage: 100, estimatedRemainingSeconds: 0 };
    if (this.pending) this.flush();
    await this.inFlight;
  }

  private flush(): void {
    const status = this.pending!;
    this.pending = undefined;
    this.lastSentMs = this.now();
    this.inFlight = this.post(status).finally(() => {
      this.inFlight = undefined;
    });
  }

  private async post(status: TrainerStatus): Promise<void> {
    try {
      await postStatus(this.target, status);
      this.sent += 1;
    } catch (err) {
      this.failed += 1;
      // One warning, then debug: a missing feature gate would otherwise fill the log.
      const fields = { url: this.target.url, error: errorMessage(err) };
      if (this.warned) this.opts.logger.debug('TrainJob status update failed', fields);
      else this.opts.logger.warn('TrainJob status update failed; training goes on (further failures at debug level)', fields);
      this.warned = true;
    }
  }
}

/** One POST; rejects with the server's message on anything but 2xx. */
export function postStatus(target: TrainerStatusTarget, status: TrainerStatus): Promise<void> {
  const body = JSON.stringify({ trainerStatus: status });
  const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
  if (target.tokenFile !== undefined) headers.authorization = `Bearer ${readFileSync(target.tokenFile, 'utf8').trim()}`;
  const ca = target.caFile !== undefined ? readFileSync(target.caFile) : undefined;
  return new Promise((resolve, reject) => {
    const req = https.request(target.url, { method: 'POST', headers, ...(ca ? { ca } : {}), timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const code = res.statusCode ?? 0;
        if (code >= 200 && code < 300) return resolve();
        const text = Buffer.concat(chunks).toString('utf8');
        let message = text;
        try {
          message = (JSON.parse(text) as { message?: string }).message ?? text;
        } catch {
          // Not a Status object: the text as it came.
        }
        reject(new Error(`HTTP ${code}: ${message.slice(0, 200)}`));
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}
