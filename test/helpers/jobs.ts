// Small job files for tests, written as YAML into a temp directory.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { tempDir } from './temp-dirs.js';

export function writeJob(job: object, dir = tempDir('mtl-job-'), name = 'job.yaml'): string {
  const file = path.join(dir, name);
  writeFileSync(file, YAML.stringify(job));
  return file;
}

/** A MultiMNIST job small enough for a test: a tiny conv trunk (exercises the wasm conv gradient), dropout, two shards. */
export function smallMultiMnistJob(overrides: { steps?: number; shardsPerTask?: number; optimizer?: object; evalEvery?: number; dropout?: number } = {}): object {
  const data = (target: string) => ({ dataset: 'multimnist', target, trainSize: 2000, testSize: 1000 });
  return {
    name: 'small-multimnist',
    seed: 7,
    model: {
      input: [28, 28, 1],
      trunk: [
        { conv2d: { filters: 4, kernelSize: 3, strides: 2, activation: 'relu' } },
        { maxPooling2d: { poolSize: 2 } },
        { flatten: {} },
        { dense: { units: 32, activation: 'relu' } },
        { dropout: { rate: overrides.dropout ?? 0.2 } },
      ],
      heads: {
        left: [{ dense: { units: 10, activation: 'softmax' } }],
        right: [{ dense: { units: 10, activation: 'softmax' } }],
      },
    },
    tasks: {
      left: { loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], data: data('left') },
      right: { loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], data: data('right') },
    },
    training: {
      steps: overrides.steps ?? 20,
      batchSize: 32,
      shardsPerTask: overrides.shardsPerTask ?? 2,
      optimizer: overrides.optimizer ?? { name: 'adam', learningRate: 0.002 },
      ...(overrides.evalEvery ? { evalEvery: overrides.evalEvery } : {}),
    },
  };
}
