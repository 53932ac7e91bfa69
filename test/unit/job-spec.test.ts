import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { JobSpecError } from '../../common/errors.js';
import { formatPath } from '../../common/spec-issues.js';
import { jobToYaml, loadJobFile, parseJobText, taskNames, trunkLayers, validateJob } from '../../common/job-spec.js';
import { repoRoot } from '../helpers/unit-jobs.js';

const examplesDir = fileURLToPath(new URL('examples/', repoRoot()));
const exampleFiles = readdirSync(examplesDir)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

function specError(fn: () => unknown): JobSpecError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof JobSpecError, `expected a JobSpecError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a JobSpecError, nothing was thrown');
}

/** The smallest valid document: every optional field left out. */
function minimalDoc(): Record<string, unknown> {
  return {
    name: 'minimal',
    model: { heads: { a: [{ dense: { units: 1 } }] } },
    tasks: { a: { loss: 'meanSquaredError', data: { dataset: 'synthetic', target: 0 } } },
    training: { steps: 5, batchSize: 4, optimizer: { name: 'adam', learningRate: 0.01 } },
  };
}

// One document with eight independent problems; each must be reported at its own path.
const MANY_PROBLEMS = `
name: many-problems
colour: blue
model:
  input: [8, 8, 1]
  trunk:
    - conv2d: { filters: 2, kernelSize: 3, filterz: 4 }
    - dense: { units: 4 }
      flatten: {}
  heads:
    left:  [ { dense: { units: 2 } } ]
    ghost: [ { dense: { units: 2 } } ]
tasks:
  left:  { loss: meanSquaredError, data: { dataset: imagenet, target: 0 } }
  right: { loss: meanSquaredError, data: { dataset: synthetic, target: 1 } }
training:
  steps: 10
  batchSize: 2
  shardsPerTask: 4
  optimizer: { name: sgd, learningRate: -1 }
`;

void describe('job files in examples/', () => {
  void it('includes the three shipped examples', () => {
    for (const name of ['multimnist.yaml', 'seattle-weather.yaml', 'synthetic.yaml']) {
      assert.ok(exampleFiles.includes(name), `examples/${name} exists (found: ${exampleFiles.join(', ')})`);
    }
  });

  for (const file of exampleFiles) {
    void it(`${file} loads and validates`, () => {
      const loaded = loadJobFile(`${examplesDir}${file}`);
      assert.equal(loaded.dir, examplesDir.replace(/\/$/, ''));
      assert.ok(taskNames(loaded.spec).length >= 1);
      for (const t of taskNames(loaded.spec)) assert.ok(t in (loaded.spec.model.heads ?? {}) || loaded.spec.tasks[t]!.output !== undefined, `task ${t} has a head or a model output`);
    });

    void it(`${file} survives jobToYaml and parses back to an equal spec`, () => {
      const { spec } = loadJobFile(`${examplesDir}${file}`);
      const again = parseJobText(jobToYaml(spec), `${file} (resolved)`);
      assert.deepEqual(again, spec);
      assert.deepEqual(taskNames(again), taskNames(spec), 'task order survives');
    });
  }

  void it('multimnist.yaml keeps the file order of tasks and layers', () => {
    const { spec } = loadJobFile(`${examplesDir}multimnist.yaml`);
    assert.deepEqual(taskNames(spec), ['left', 'right']);
    assert.deepEqual(
      trunkLayers(spec).map((l) => l.type),
      ['flatten', 'dense', 'dense'],
    );
    assert.equal(spec.seed, 1);
    assert.deepEqual(spec.model.input, [28, 28, 1]);
  });
});

void describe('defaults', () => {
  void it('are applied to every optional field', () => {
    const spec = validateJob(minimalDoc(), 'minimal.yaml');
    assert.equal(spec.seed, 0);
    assert.equal(spec.training.shardsPerTask, 1);
    assert.equal(spec.training.mode, 'simultaneous');
    assert.deepEqual(spec.training.aggregator, { name: 'mean' });
    assert.equal(spec.training.evalEvery, undefined);
    assert.equal(spec.training.nonFinite, 'fail');
    assert.deepEqual(spec.tasks.a?.metrics, []);
    assert.deepEqual(spec.model.trunk, []);
    assert.deepEqual(spec.training.optimizer, { name: 'adam', learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 });
    assert.deepEqual(spec.model.heads?.a, [{ dense: { units: 1, activation: 'linear', useBias: true } }]);
    const data = spec.tasks.a?.data;
    assert.ok(data?.dataset === 'synthetic');
    assert.equal(data.tasks, 2);
    assert.equal(data.rho, 0.5);
  });

  void it('fill in momentum and layer options', () => {
    const doc = minimalDoc();
    doc.model = {
      input: [6, 6, 1],
      trunk: [{ conv2d: { filters: 2, kernelSize: 3 } }, { maxPooling2d: {} }],
      heads: { a: [{ flatten: {} }, { dense: { units: 1 } }] },
    };
    doc.training = { steps: 5, batchSize: 4, optimizer: { name: 'momentum', learningRate: 0.1 } };
    const spec = validateJob(doc, 'x');
    assert.deepEqual(spec.training.optimizer, { name: 'momentum', learningRate: 0.1, momentum: 0.9, nesterov: false });
    assert.deepEqual(trunkLayers(spec), [
      { type: 'conv2d', config: { filters: 2, kernelSize: 3, strides: 1, padding: 'valid', activation: 'linear', useBias: true } },
      { type: 'maxPooling2d', config: { poolSize: 2, padding: 'valid' } },
    ]);
  });
});

void describe('validation errors', () => {
  void it('training.nonFinite takes fail, skip-unit or skip-step, nothing else', () => {
    const doc = minimalDoc() as { training: Record<string, unknown> };
    for (const policy of ['fail', 'skip-unit', 'skip-step']) {
      assert.equal(validateJob({ ...doc, training: { ...doc.training, nonFinite: policy } }, 'x').training.nonFinite, policy);
    }
    const err = specError(() => validateJob({ ...doc, training: { ...doc.training, nonFinite: 'ignore' } }, 'x'));
    assert.deepEqual(err.issues.map((i) => i.path), ['training.nonFinite']);
  });

  void it('a document with many problems gives one JobSpecError naming every path', () => {
    const err = specError(() => parseJobText(MANY_PROBLEMS, 'many.yaml'));
    const paths = err.issues.map((i) => i.path);
    const expected = [
      'colour',
      'model.trunk[0].conv2d.filterz',
      'model.trunk[1]',
      'model.heads.ghost',
      'model.heads.right',
      'tasks.left.data.dataset',
      'training.shardsPerTask',
      'training.optimizer.learningRate',
    ];
    const missing = expected.filter((p) => !paths.includes(p));
    assert.deepEqual(missing, [], `every problem is reported at once; got only:\n${err.message}`);
    for (const p of expected) assert.equal(paths.filter((q) => q === p).length, 1, `${p} is reported once`);
  });

  void it('each schema problem has a readable message at its exact path', () => {
    const err = specError(() => parseJobText(MANY_PROBLEMS, 'many.yaml'));
    const message = (path: string): string => {
      const issue = err.issues.find((i) => i.path === path);
      assert.ok(issue, `an issue at ${path} in:\n${err.message}`);
      return issue.message;
    };
    assert.match(message('training.optimizer.learningRate'), /positive/);
    assert.match(message('training.optimizer.learningRate'), /-1\b/);
    assert.match(message('colour'), /unknown key/);
    assert.match(message('model.trunk[0].conv2d.filterz'), /unknown key/);
    assert.match(message('model.trunk[1]'), /exactly one layer type/);
    assert.match(message('model.trunk[1]'), /dense and flatten/);
    assert.match(message('tasks.left.data.dataset'), /"imagenet"/);
    assert.match(message('tasks.left.data.dataset'), /multimnist/);
    assert.equal(err.source, 'many.yaml');
    assert.ok(err.message.startsWith('many.yaml: invalid job spec\n'));
    assert.match(err.message, /^ {2}training\.optimizer\.learningRate: /m);
  });

  void it('cross-field problems are reported together, each at its path', () => {
    const doc = minimalDoc();
    doc.model = { heads: { ghost: [{ dense: { units: 1 } }] } };
    doc.training = { steps: 5, batchSize: 2, shardsPerTask: 3, optimizer: { name: 'sgd', learningRate: 1 } };
    const err = specError(() => validateJob(doc, 'cross.yaml'));
    const byPath = new Map(err.issues.map((i) => [i.path, i.message]));
    assert.deepEqual([...byPath.keys()].sort(), ['model.heads.a', 'model.heads.ghost', 'training.shardsPerTask']);
    assert.match(byPath.get('model.heads.a') ?? '', /no head/);
    assert.match(byPath.get('model.heads.ghost') ?? '', /unknown task "ghost"/);
    assert.match(byPath.get('training.shardsPerTask') ?? '', /batchSize \(2\).*got 3/);
  });

  void it('shardsPerTask equal to batchSize is allowed', () => {
    const doc = minimalDoc();
    doc.training = { steps: 5, batchSize: 3, shardsPerTask: 3, optimizer: { name: 'sgd', learningRate: 1 } };
    assert.equal(validateJob(doc, 'x').training.shardsPerTask, 3);
  });

  void it('an empty layer and a missing required field are named', () => {
    const doc = minimalDoc();
    doc.model = { trunk: [{}], heads: { a: [{ dense: {} }] } };
    const err = specError(() => validateJob(doc, 'x'));
    const byPath = new Map(err.issues.map((i) => [i.path, i.message]));
    assert.match(byPath.get('model.trunk[0]') ?? '', /got none/);
    assert.match(byPath.get('model.heads.a[0].dense.units') ?? '', /missing/);
  });

  void it('YAML syntax errors are JobSpecErrors with a line number', () => {
    const err = specError(() => parseJobText('name: x\nmodel:\n  trunk: [1, 2\nseed: 3\n', 'broken.yaml'));
    assert.equal(err.source, 'broken.yaml');
    assert.ok(err.issues.length >= 1);
    assert.match(err.issues[0]?.message ?? '', /line \d+/);
    assert.doesNotMatch(err.issues[0]?.message ?? '', /line \?/);
  });

  void it('duplicate keys are errors with the line of the duplicate', () => {
    const err = specError(() => parseJobText('name: a\nseed: 1\nname: b\n', 'dup.yaml'));
    assert.equal(err.issues.length, 1);
    assert.match(err.issues[0]?.message ?? '', /DUPLICATE_KEY/);
    assert.match(err.issues[0]?.message ?? '', /line 3\b/);
  });

  void it('a missing file is a JobSpecError saying "no such file"', () => {
    const missing = fileURLToPath(new URL('examples/does-not-exist.yaml', repoRoot()));
    const err = specError(() => loadJobFile(missing));
    assert.match(err.message, /no such file/);
    assert.equal(err.source, missing);
    assert.ok(err.cause instanceof Error, 'keeps the fs error as cause');
  });

  void it('JSON documents are validated the same way', () => {
    const err = specError(() => validateJob(JSON.parse('{"name": "9lives"}') as unknown, 'j.json'));
    const paths = err.issues.map((i) => i.path);
    assert.ok(paths.includes('name'), 'a name must start with a letter');
    assert.ok(paths.includes('model'));
    assert.ok(paths.includes('tasks'));
    assert.ok(paths.includes('training'));
  });
});

void describe('formatPath', () => {
  void it('writes keys dotted and indices in brackets', () => {
    assert.equal(formatPath(['model', 'trunk', 0, 'conv2d', 'filterz']), 'model.trunk[0].conv2d.filterz');
    assert.equal(formatPath([]), '');
    assert.equal(formatPath(['tasks', 'left', 'data']), 'tasks.left.data');
  });
});
