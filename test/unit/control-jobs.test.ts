import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeJobMessage, expandSweep, newRunId, parseSweep, type JobMessage } from '../../common/control/jobs.js';
import { ID_PATTERN } from '../../common/control/plane.js';
import { JobSpecError } from '../../common/errors.js';
import { validateJob } from '../../common/job-spec.js';

const doc = () => ({
  name: 'sweep',
  model: { trunk: [{ dense: { units: 4 } }], heads: { a: [{ dense: { units: 1 } }] } },
  tasks: { a: { loss: 'meanSquaredError', data: { dataset: 'synthetic', target: 0, dim: 4, samples: 100 } } },
  training: { steps: 5, batchSize: 8, optimizer: { name: 'adam', learningRate: 0.01 } },
});

void describe('sweeps', () => {
  void it('parses KEY=V1,V2 with YAML scalars', () => {
    assert.deepEqual(parseSweep('training.optimizer.learningRate=0.1,1e-3'), { path: ['training', 'optimizer', 'learningRate'], values: [0.1, 0.001] });
    assert.deepEqual(parseSweep('training.aggregator.name=mgda, pcgrad').values, ['mgda', 'pcgrad']);
    for (const bad of ['noequals', '=1,2', 'a..b=1', 'a=']) assert.throws(() => parseSweep(bad), JobSpecError, bad);
  });

  void it('expands the cartesian product of its axes, each point a validated job', () => {
    const points = expandSweep(doc(), 'job.yaml', [parseSweep('training.optimizer.learningRate=0.1,0.2'), parseSweep('seed=1,2,3')]);
    assert.equal(points.length, 6);
    assert.deepEqual(
      points.map((p) => [p.spec.training.optimizer.learningRate, p.spec.seed]),
      [[0.1, 1], [0.1, 2], [0.1, 3], [0.2, 1], [0.2, 2], [0.2, 3]],
    );
    assert.deepEqual(points[4]!.values, { 'training.optimizer.learningRate': 0.2, seed: 2 });
    // No sweep: the job itself.
    assert.equal(expandSweep(doc(), 'job.yaml', []).length, 1);
  });

  void it('names the path and the sweep point of every invalid value, before anything is queued', () => {
    assert.throws(
      () => expandSweep(doc(), 'job.yaml', [parseSweep('training.optimizer.learningRate=0.1,-1')]),
      (err: unknown) => {
        assert.ok(err instanceof JobSpecError);
        assert.equal(err.issues.length, 1);
        assert.equal(err.issues[0]!.path, 'training.optimizer.learningRate');
        assert.match(err.issues[0]!.message, /sweep point training\.optimizer\.learningRate=-1/);
        return true;
      },
    );
    assert.throws(() => expandSweep(doc(), 'job.yaml', [parseSweep('training.steps.x=1')]), /must go through objects/);
    assert.throws(() => expandSweep(doc(), 'job.yaml', [parseSweep('training.unknownKey=1')]), /training\.unknownKey/);
  });
});

void describe('queue messages', () => {
  const message = (): JobMessage => ({ kind: 'mtl-job', version: 1, runId: 'sweep-1', spec: validateJob(doc(), 'x'), jobDir: '/data', pool: 'default', sweep: {}, submittedAt: '2026-01-01T00:00:00Z' });

  void it('round-trips a valid message', () => {
    assert.deepEqual(decodeJobMessage(JSON.stringify(message())), message());
  });

  void it('rejects non-JSON, foreign messages and invalid jobs with the path', () => {
    assert.throws(() => decodeJobMessage('{'), /not JSON/);
    assert.throws(() => decodeJobMessage(JSON.stringify({ hello: 1 })), /kind/);
    const bad = message() as unknown as { spec: { training: { steps: number } } };
    bad.spec.training.steps = -3;
    assert.throws(() => decodeJobMessage(JSON.stringify(bad)), /training\.steps/);
  });

  void it('makes run ids that are valid subject tokens and KV keys', () => {
    for (const name of ['multimnist', 'a_b-c', 'x'.repeat(200)]) assert.match(newRunId(name), ID_PATTERN);
    assert.notEqual(newRunId('a'), newRunId('a'));
  });
});
