// The coordinator's progress reports to Kubeflow Trainer's status endpoint, against a real local
// HTTPS server that takes the requests as Trainer's status server does (POST, bearer token,
// TLS with the CA of the injected file): the payload, the throttle, token rotation, a
// refused update that training shrugs off, and `mtl run` reporting when the variables are set.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Logger } from '../../common/logging.js';
import { TRAINER_STATUS_ENV, TrainerStatusReporter, trainerStatusTarget, type TrainerStatus } from '../../coordinator/trainer-status.js';
import { runCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { makeCerts, tinyJob, type CertDir } from '../helpers/security.js';
import { tempDir } from '../helpers/temp-dirs.js';

interface Received {
  method: string;
  url: string;
  authorization: string | undefined;
  contentType: string | undefined;
  body: { trainerStatus: TrainerStatus };
}

const STATUS_PATH = '/apis/trainer.kubeflow.org/v1alpha1/namespaces/team/trainjobs/run-1/status';

function captureLogger(lines: string[]): Logger {
  const log: Logger = {
    debug: (m, f) => lines.push(`debug ${m} ${JSON.stringify(f ?? {})}`),
    info: (m, f) => lines.push(`info ${m} ${JSON.stringify(f ?? {})}`),
    warn: (m, f) => lines.push(`warn ${m} ${JSON.stringify(f ?? {})}`),
    error: (m, f) => lines.push(`error ${m} ${JSON.stringify(f ?? {})}`),
    child: () => log,
  };
  return log;
}

void describe('TrainJob status reports (Kubeflow Trainer status server)', () => {
  let certs: CertDir;
  let server: https.Server;
  let received: Received[] = [];
  /** The status the server answers with next (Trainer answers 403 for a token of another TrainJob). */
  let answer = 200;
  let base = '';

  before(async () => {
    certs = await makeCerts();
    server = https.createServer({ key: readFileSync(certs.file('coordinator.key')), cert: readFileSync(certs.file('coordinator.crt')) }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        received.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, contentType: req.headers['content-type'], body: JSON.parse(body) as Received['body'] });
        res.writeHead(answer, { 'content-type': 'application/json' });
        res.end(answer === 200 ? body : JSON.stringify({ kind: 'Status', status: 'Failure', message: 'Forbidden', reason: 'Forbidden', code: answer }));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const tokenFile = (token: string) => {
    const file = path.join(tempDir('mtl-trainer-token-'), 'token');
    writeFileSync(file, `${token}\n`);
    return file;
  };

  void it('posts Trainer\'s payload with the bearer token, at most once per interval, the latest step winning, and the end at 100 %', async () => {
    received = [];
    answer = 200;
    const token = tokenFile('first-token');
    let now = Date.parse('2026-12-03T10:00:00Z');
    const lines: string[] = [];
    const reporter = new TrainerStatusReporter({ url: `${base}${STATUS_PATH}`, caFile: certs.ca, tokenFile: token }, { totalSteps: 10, logger: captureLogger(lines), intervalMs: 5000, now: () => now });
    const step = async (n: number, at: number) => {
      now = Date.parse('2026-12-03T10:00:00Z') + at;
      reporter.step(n, { left: 0.5 * n, right: 0.25, broken: Number.NaN });
      await reporter.settled();
    };
    await step(1, 1000); // sent: the first
    await step(2, 2000); // within the interval: kept
    await step(3, 3000); // replaces step 2
    await step(4, 6000); // the interval has passed: sent
    writeFileSync(token, 'rotated-token\n'); // the kubelet rotates the projected token
    await step(5, 7000); // kept until the end
    await reporter.finish({ succeeded: true });

    assert.equal(received.length, 3, JSON.stringify(received.map((r) => r.body.trainerStatus.metrics[0])));
    for (const r of received) {
      assert.equal(r.method, 'POST');
      assert.equal(r.url, STATUS_PATH);
      assert.equal(r.contentType, 'application/json');
    }
    assert.deepEqual(received.map((r) => r.authorization), ['Bearer first-token', 'Bearer first-token', 'Bearer rotated-token']);
    const [first, fourth, last] = received.map((r) => r.body.trainerStatus);
    assert.deepEqual(first, {
      progressPercentage: 10,
      metrics: [
        { name: 'step', value: '1/10' },
        { name: 'loss/left', value: '0.5' },
        { name: 'loss/right', value: '0.25' },
      ],
      lastUpdatedTime: '2026-12-03T10:00:01.000Z',
    }, 'no estimate from a single step; a NaN loss is left out');
    // Three steps in 5 s since the first: 5/3 s a step, 6 to go.
    assert.equal(fourth!.progressPercentage, 40);
    assert.equal(fourth!.estimatedRemainingSeconds, 10);
    assert.deepEqual(fourth!.metrics[0], { name: 'step', value: '4/10' });
    assert.equal(last!.progressPercentage, 100);
    assert.equal(last!.estimatedRemainingSeconds, 0);
    assert.deepEqual(last!.metrics[0], { name: 'step', value: '5/10' });
    assert.equal(reporter.sent, 3);
    assert.equal(reporter.failed, 0);
    assert.deepEqual(lines, []);
  });

  void it('shrugs off a refused update, an unknown CA and an absent server: counted, one warning, never thrown', async () => {
    received = [];
    answer = 403;
    const lines: string[] = [];
    const refused = new TrainerStatusReporter({ url: `${base}${STATUS_PATH}`, caFile: certs.ca, tokenFile: tokenFile('other-trainjob') }, { totalSteps: 4, logger: captureLogger(lines), intervalMs: 0 });
    refused.step(1, { t: 1 });
    await refused.settled();
    refused.step(2, { t: 1 });
    await refused.finish({ succeeded: false });
    assert.equal(refused.failed, 2);
    assert.equal(received.length, 2);
    assert.equal(lines.filter((l) => l.startsWith('warn')).length, 1, lines.join('\n'));
    assert.match(lines[0]!, /HTTP 403: Forbidden/);
    assert.match(lines[1]!, /^debug /);

    // A server certificate that the given CA did not sign is refused: the CA file is what counts.
    const other = await makeCerts();
    const untrusted = new TrainerStatusReporter({ url: `${base}${STATUS_PATH}`, caFile: other.ca }, { totalSteps: 4, logger: captureLogger([]), intervalMs: 0 });
    untrusted.step(1, {});
    await untrusted.finish();
    assert.equal(untrusted.failed, 1);
    assert.equal(received.length, 2, 'nothing reached the server');

    const closed = new TrainerStatusReporter({ url: 'https://127.0.0.1:1/status' }, { totalSteps: 4, logger: captureLogger([]), intervalMs: 0 });
    closed.step(1, {});
    await closed.finish();
    assert.equal(closed.failed, 1);
  });

  void it('takes its target from the variables Trainer injects, and nothing without the URL', () => {
    assert.equal(trainerStatusTarget({}), undefined);
    assert.equal(trainerStatusTarget({ [TRAINER_STATUS_ENV.url]: '' }), undefined);
    assert.deepEqual(trainerStatusTarget({ [TRAINER_STATUS_ENV.url]: 'https://h:1/p', [TRAINER_STATUS_ENV.ca]: '/ca', [TRAINER_STATUS_ENV.token]: '/t' }), { url: 'https://h:1/p', caFile: '/ca', tokenFile: '/t' });
  });

  void it('mtl run reports its progress when KUBEFLOW_TRAINER_SERVER_URL is set, ending at 100 %', async () => {
    received = [];
    answer = 200;
    const job = writeJob(tinyJob(6));
    const r = await runCli(['run', job, '--workers', '1', '--out', path.join(tempDir('mtl-trainer-run-'), 'out'), '--quiet'], {
      [TRAINER_STATUS_ENV.url]: `${base}${STATUS_PATH}`,
      [TRAINER_STATUS_ENV.ca]: certs.ca,
      [TRAINER_STATUS_ENV.token]: tokenFile('run-token'),
    });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(received.length >= 2, `the first step and the end: ${received.length}`);
    assert.ok(received.every((x) => x.authorization === 'Bearer run-token'));
    const last = received.at(-1)!.body.trainerStatus;
    assert.equal(last.progressPercentage, 100);
    assert.deepEqual(last.metrics[0], { name: 'step', value: '6/6' });
    assert.deepEqual(last.metrics.slice(1).map((m) => m.name), ['loss/task0', 'loss/task1']);
  });
});
