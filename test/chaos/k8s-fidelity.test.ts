// What `mtl k8s render` emits is what runs: the rendered pods are started as local processes
// (test/helpers/local-pods.ts: each container's command, arguments and environment as rendered,
// volumes as directories, Services as loopback ports, a real nats-server for the NATS Service).
// The coordinator pod is SIGKILLed mid-run and replaced the way its Job controller replaces it
// (a new pod of the same Job: same labels, fresh emptyDirs, the same claim); the replacement
// resumes from the run's newest checkpoint in NATS, the workers reconnect, and the run ends with
// bitwise the weights of an undisturbed run, every step done once. A third coordinator pod,
// started after the success, trains nothing; another job under the same run id is refused.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { runCli } from '../helpers/cli-process.js';
import { chaosJob, referenceWeights, summaryOf, weightsOf } from '../helpers/chaos.js';
import { LocalCluster, type LocalPod } from '../helpers/local-pods.js';
import { NatsServer } from '../helpers/nats-server.js';
import { tempDir } from '../helpers/temp-dirs.js';

/** The JobSet's uid: every pod of the run carries it, a replacement pod too. */
const JOB_UID = '3f1c7a52-0d7e-4c3b-9a51-6c2f0e8b1d94';

/** Resolves once some run directory on the claim has `steps` metrics lines; fails if `pod` ends first. */
async function waitForRunSteps(claim: string, steps: number, pod: LocalPod, timeoutMs = 180_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let ended: number | string | undefined;
  void pod.containers[0]!.exit.then((c) => (ended = c));
  for (;;) {
    for (const run of existsSync(claim) ? readdirSync(claim) : []) {
      const file = path.join(claim, run, 'metrics.jsonl');
      if (existsSync(file) && readFileSync(file, 'utf8').trim().split('\n').length >= steps) return path.join(claim, run);
    }
    if (ended !== undefined) throw new Error(`the coordinator exited (${ended}) before step ${steps}:\n${pod.containers[0]!.output()}`);
    if (Date.now() > deadline) throw new Error(`no run reached step ${steps} within ${timeoutMs} ms:\n${pod.containers[0]!.output()}`);
    await sleep(50);
  }
}

void describe('rendered Kubernetes objects, run as local processes', () => {
  let nats: NatsServer;
  let cluster: LocalCluster | undefined;
  before(async () => {
    nats = await NatsServer.start();
  });
  after(async () => {
    cluster?.stop();
    await nats.stop();
  });

  void it('coordinator pod SIGKILLed and replaced: resumes from NATS, bitwise equal, every step once; a pod after success trains nothing', async () => {
    const job = chaosJob({ steps: 30, checkpoint: { every: 5 } });
    const reference = referenceWeights(job);
    // The default render: one JobSet, mutual TLS and the join token from the run's Secret,
    // made the way the render's message says.
    const render = await runCli(['k8s', 'render', job, '--workers', '2', '--name', 'fid']);
    assert.equal(render.code, 0, render.stderr);
    const secret = await runCli(['k8s', 'secret', '--name', 'fid']);
    assert.equal(secret.code, 0, secret.stderr);
    const docs = YAML.parseAllDocuments(`${render.stdout}---\n${secret.stdout}`).map((d) => d.toJSON() as never);
    const local = await LocalCluster.create(docs, nats.url);
    cluster = local;
    const coordinator = local.template('coordinator');
    const workers = local.template('worker');
    assert.equal(workers.replicas, 2, 'the workers Job runs two pods at once');
    // What the JobSet and Job controllers put on every pod of the run.
    const controller = { 'jobset.sigs.k8s.io/jobset-uid': JOB_UID, 'batch.kubernetes.io/controller-uid': 'b0c1d2e3-0000-4000-8000-000000000001' };

    const first = await local.startPod(coordinator, { name: 'fid-coordinator-a', labels: controller });
    const workerPods = await Promise.all(
      [0, 1].map((i) => local.startPod(workers, { name: `fid-workers-${i}-x`, labels: { 'batch.kubernetes.io/job-completion-index': String(i) }, annotations: { 'batch.kubernetes.io/job-completion-index': String(i) } })),
    );
    const claim = local.claim('fid-runs');
    const runDir = await waitForRunSteps(claim, 13, first);
    assert.equal(path.basename(runDir), `fid-${JOB_UID}`, 'the run directory is named for the run id the pod derives from its JobSet');
    first.containers[0]!.child.kill('SIGKILL');
    await first.containers[0]!.exit;
    assert.ok(!existsSync(path.join(runDir, 'summary.json')), 'a killed coordinator writes no summary');
    assert.ok(!existsSync(path.join(runDir, 'checkpoints')), 'with --nats the checkpoints are in the object store, not the run directory');

    // Another job under the same run id is refused, before any lease wait.
    const other = await runCli(['coordinator', chaosJob({ steps: 31, checkpoint: { every: 5 } }), '--listen', '127.0.0.1:0', '--out', tempDir('mtl-fid-other-'), '--nats', nats.url, '--run-id', `fid-${JOB_UID}`]);
    assert.equal(other.code, 2, other.stderr);
    assert.match(other.stderr, /its checkpoints in NATS were written by another job/);

    // As after a JobSet restart: a new coordinator Job (another controller-uid), the same JobSet.
    const second = await local.startPod(coordinator, { name: 'fid-coordinator-b', labels: { ...controller, 'batch.kubernetes.io/controller-uid': 'b0c1d2e3-0000-4000-8000-000000000002' } });
    const code = await second.containers[0]!.exit;
    const log = second.containers[0]!.output();
    assert.equal(code, 0, log);
    assert.match(log, /taking it over once the lease lapses/);
    assert.match(log, /resumed at step 1[05]/);
    for (const w of workerPods) assert.equal(await w.containers[0]!.exit, 0, w.containers[0]!.output());
    const summary = summaryOf(runDir) as ReturnType<typeof summaryOf> & { resumedFrom: number };
    assert.equal(summary.status, 'succeeded');
    assert.equal(summary.faults.resumes, 1);
    assert.ok(weightsOf(runDir).equals(await reference), 'the replaced coordinator ends with other weights than an undisturbed run');
    const steps = readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { step: number }).step);
    assert.deepEqual(steps, Array.from({ length: 30 }, (_, i) => i + 1));

    const third = await local.startPod(coordinator, { name: 'fid-coordinator-c', labels: controller });
    assert.equal(await third.containers[0]!.exit, 0, third.containers[0]!.output());
    assert.match(third.containers[0]!.output(), /already succeeded \(30\/30 steps\).*: not started again/);
    assert.ok(weightsOf(runDir).equals(await reference), 'a start after success leaves the run directory alone');
  });
});
