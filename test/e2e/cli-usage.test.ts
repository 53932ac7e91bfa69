// What a new user meets first: unknown commands, invalid job files, flags that do not apply.
// The real CLI as a child process.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { tinyJob } from '../helpers/security.js';
import { tempDir } from '../helpers/temp-dirs.js';

void describe('mtl: unknown commands', () => {
  for (const args of [['explain'], ['explain', '--help'], ['explain', '-h', '--json'], ['help', 'explain']]) {
    void it(`mtl ${args.join(' ')}: exit 2, "unknown command 'explain'" and the commands there are`, async () => {
      const r = await runCli(args);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /unknown command 'explain'/);
      assert.match(r.stderr, /commands: run, coordinator, worker, .*validate/);
      assert.doesNotMatch(r.stdout, /Usage:/, 'no help on stdout, as if it had worked');
    });
  }

  void it('a misspelt command gets the nearest one, also inside a command group', async () => {
    const r = await runCli(['valdiate', '--help']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command 'valdiate' \(did you mean validate\?\)/);
    const k8s = await runCli(['k8s', 'rendr', '--help']);
    assert.equal(k8s.code, 2);
    assert.match(k8s.stderr, /unknown command 'rendr' \(did you mean render\?\)\nmtl k8s commands: render, apply, secret/);
  });

  void it('known commands still show their help with exit 0', async () => {
    for (const args of [['validate', '--help'], ['help', 'validate'], ['k8s', 'render', '--help'], ['--help']]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /^Usage: mtl/, args.join(' '));
    }
  });
});

void describe('mtl validate: unknown keys', () => {
  void it('exit 2, naming the unsupported layer and the nearest name of a misspelt one', async () => {
    const job = writeJob({
      name: 'typos',
      model: { trunk: [{ attention: { units: 8 } }, { dense2: { units: 4 } }], heads: { a: [{ dense: { units: 1 } }] } },
      tasks: { a: { loss: 'meanSquaredError', data: { dataset: 'synthetic', target: 0 } } },
      training: { steps: 10, batchSize: 4, optimizer: { name: 'adam', learningRate: 0.01, betta1: 0.9 } },
    });
    const r = await runCli(['validate', job]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /model\.trunk\[0\]\.attention: layer `attention` is not supported \(supported: dense, conv2d, maxPooling2d, flatten, dropout, /);
    assert.match(r.stderr, /model\.trunk\[1\]\.dense2: `dense2` is not a layer; did you mean `dense`\?/);
    assert.match(r.stderr, /training\.optimizer\.betta1: unknown key; did you mean `beta1`\?/);
  });
});

void describe('mtl run --http on a non-loopback address', () => {
  void it('exit 2 with what works for mtl run (a tunnel, or mtl coordinator), not a flag mtl run lacks', async () => {
    const r = await runCli(['run', writeJob(tinyJob(2)), '--http', '0.0.0.0:0', '--out', path.join(tempDir('mtl-http-'), 'run')]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--http 0\.0\.0\.0:0: mtl run serves the dashboard and \/metrics on a loopback address only/);
    assert.match(r.stderr, /SSH tunnel .* port-forward/);
    assert.match(r.stderr, /mtl coordinator JOB --listen HOST:PORT --http HOST:PORT/);
    assert.doesNotMatch(r.stderr, /add --insecure/);
    const insecure = await runCli(['run', writeJob(tinyJob(2)), '--insecure']);
    assert.equal(insecure.code, 2, 'and mtl run really has no --insecure');
    assert.match(insecure.stderr, /unknown option '--insecure'/);
  });
});

void describe('mtl run --quiet', () => {
  const run = (flags: string[], env: NodeJS.ProcessEnv = {}) => runCli(['run', writeJob(tinyJob(3)), '--backend', 'cpu', '--out', path.join(tempDir('mtl-quiet-'), 'run'), ...flags], env);

  void it('prints no progress and no INFO log lines, only the summary', async () => {
    const r = await run(['--quiet'], { MTL_LOG_LEVEL: undefined });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, / INFO /, r.stderr);
    assert.doesNotMatch(r.stderr, /^step \d+\//m);
    assert.match(r.stdout, /^run tiny-\S+ succeeded after 3\/3 steps/);
  });

  void it('an explicit --log-level or MTL_LOG_LEVEL still wins', async () => {
    const flag = await run(['--quiet', '--log-level', 'info'], { MTL_LOG_LEVEL: undefined });
    assert.equal(flag.code, 0, flag.stderr);
    assert.match(flag.stderr, / INFO {2}coordinator: listening/);
    assert.doesNotMatch(flag.stderr, /^step \d+\//m, 'progress stays hidden');
    const env = await run(['--quiet'], { MTL_LOG_LEVEL: 'info' });
    assert.equal(env.code, 0, env.stderr);
    assert.match(env.stderr, / INFO {2}coordinator: listening/);
  });
});

void describe('a batchSize larger than a task\'s training rows', () => {
  // 100 synthetic samples, 20% held out: 80 training rows per task, against batches of 256.
  const job = () => {
    const data = (target: number) => ({ dataset: 'synthetic', target, tasks: 2, dim: 4, samples: 100 });
    return writeJob({
      name: 'big-batch',
      model: { trunk: [{ dense: { units: 4 } }], heads: { a: [{ dense: { units: 1 } }], b: [{ dense: { units: 1 } }] } },
      tasks: { a: { loss: 'meanSquaredError', data: data(0) }, b: { loss: 'meanSquaredError', data: data(1) } },
      training: { steps: 2, batchSize: 256, optimizer: { name: 'sgd', learningRate: 0.01 } },
    });
  };
  const warning = (task: string) => new RegExp(`warning: .*job\\.yaml: training\\.batchSize: batchSize 256 is larger than the 80 training rows of task ${task}: each of its rows appears about 3 times in every batch`);

  void it('mtl validate warns, naming the task, its rows and the batch size (exit 0); --strict refuses it (exit 2)', async () => {
    const file = job();
    const r = await runCli(['validate', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, warning('a'));
    assert.match(r.stderr, warning('b'));
    assert.match(r.stdout, /valid \(2 warning\(s\) above\)/);
    const json = await runCli(['validate', file, '--json']);
    assert.equal((JSON.parse(json.stdout) as { warnings: Array<{ path: string }> }).warnings.length, 2);
    const strict = await runCli(['validate', file, '--strict']);
    assert.equal(strict.code, 2);
    assert.match(strict.stderr, /2 warning\(s\), which --strict makes errors/);
  });

  void it('mtl run warns the same way before training', async () => {
    const r = await runCli(['run', job(), '--backend', 'cpu', '--quiet', '--out', path.join(tempDir('mtl-big-batch-'), 'run')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, warning('a'));
  });

  void it('a batch that fits is not warned about', async () => {
    const r = await runCli(['validate', writeJob(tinyJob(2))]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /warning/);
  });
});
