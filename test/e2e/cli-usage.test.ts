// What a new user meets first: unknown commands, invalid job files. The real CLI as a child process.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';

void describe('mtl: unknown commands', () => {
  for (const args of [['predict'], ['predict', '--help'], ['predict', '-h', '--json'], ['help', 'predict']]) {
    void it(`mtl ${args.join(' ')}: exit 2, "unknown command 'predict'" and the commands there are`, async () => {
      const r = await runCli(args);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /unknown command 'predict'/);
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
    assert.match(k8s.stderr, /unknown command 'rendr' \(did you mean render\?\)\nmtl k8s commands: render, apply/);
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
      model: { trunk: [{ embedding: { units: 8 } }, { dense2: { units: 4 } }], heads: { a: [{ dense: { units: 1 } }] } },
      tasks: { a: { loss: 'meanSquaredError', data: { dataset: 'synthetic', target: 0 } } },
      training: { steps: 10, batchSize: 4, optimizer: { name: 'adam', learningRate: 0.01, betta1: 0.9 } },
    });
    const r = await runCli(['validate', job]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /model\.trunk\[0\]\.embedding: layer `embedding` is not supported \(supported: dense, conv2d, maxPooling2d, flatten, dropout\)/);
    assert.match(r.stderr, /model\.trunk\[1\]\.dense2: `dense2` is not a layer; did you mean `dense`\?/);
    assert.match(r.stderr, /training\.optimizer\.betta1: unknown key; did you mean `beta1`\?/);
  });
});
