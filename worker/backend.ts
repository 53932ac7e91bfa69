// Compute backend selection. `auto` takes the first that loads of: tfjs-node-gpu (CUDA),
// tfjs-node (native CPU), wasm, cpu. The native packages are optional dependencies: they
// download libtensorflow when installed and are absent where that is impossible. Activating
// wasm or cpu also registers our gradient kernels for it (missing on wasm, wrong in tfjs 4.22).
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { BackendUnavailableError, errorMessage } from '../common/errors.js';
import type * as WasmBackend from '@tensorflow/tfjs-backend-wasm';

import { BACKEND_CHOICES, type BackendChoice } from './backend-choices.js';
import { registerCpuGradientKernels } from './host-gradient-kernels.js';
import { registerWasmGradientKernels } from './wasm-gradient-kernels.js';

export { BACKEND_CHOICES, type BackendChoice };
export type BackendName = 'tensorflow' | 'wasm' | 'cpu';

export interface SelectedBackend {
  name: BackendName;
  /** `gpu` (tfjs-node-gpu), `cpu` otherwise. */
  device: 'gpu' | 'cpu';
  /** The package that provided it. */
  provider: string;
  /** What was tried before it, and why each failed (for the log). */
  skipped: Array<{ provider: string; reason: string }>;
}

interface Candidate {
  provider: string;
  name: BackendName;
  device: 'gpu' | 'cpu';
  activate: () => Promise<void>;
}

/** How a candidate package is loaded; injectable so tests can simulate absent packages. */
export type ModuleImporter = (specifier: string) => Promise<unknown>;

const defaultImporter: ModuleImporter = (specifier) => import(specifier);

async function activate(name: string): Promise<void> {
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`tf.setBackend('${name}') returned false`);
  await tf.ready();
}

function candidates(importer: ModuleImporter): Record<BackendName, Candidate[]> {
  const native = (provider: string, device: 'gpu' | 'cpu'): Candidate => ({
    provider,
    name: 'tensorflow',
    device,
    activate: async () => {
      await importer(provider);
      await activate('tensorflow');
    },
  });
  return {
    tensorflow: [native('@tensorflow/tfjs-node-gpu', 'gpu'), native('@tensorflow/tfjs-node', 'cpu')],
    wasm: [
      {
        provider: '@tensorflow/tfjs-backend-wasm',
        name: 'wasm',
        device: 'cpu',
        activate: async () => {
          const wasm = (await importer('@tensorflow/tfjs-backend-wasm')) as typeof WasmBackend;
          // Point the loader at the .wasm files inside the installed package: nothing is fetched.
          const require = createRequire(import.meta.url);
          const dist = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
          wasm.setWasmPaths(dist.endsWith(path.sep) ? dist : dist + path.sep);
          await activate('wasm');
          registerWasmGradientKernels();
        },
      },
    ],
    cpu: [
      {
        provider: '@tensorflow/tfjs',
        name: 'cpu',
        device: 'cpu',
        activate: async () => {
          // The cpu backend ships with @tensorflow/tfjs itself; its wrong ResizeNearestNeighborGrad is replaced.
          await activate('cpu');
          registerCpuGradientKernels();
        },
      },
    ],
  };
}

/**
 * Loads and activates a backend. `auto` falls through the list; an explicit choice fails
 * with BackendUnavailableError naming what was tried and why.
 */
export async function selectBackend(choice: BackendChoice, importer: ModuleImporter = defaultImporter): Promise<SelectedBackend> {
  const all = candidates(importer);
  const order: Candidate[] = choice === 'auto' ? [...all.tensorflow, ...all.wasm, ...all.cpu] : all[choice];
  const skipped: SelectedBackend['skipped'] = [];
  for (const c of order) {
    try {
      await c.activate();
      return { name: c.name, device: c.device, provider: c.provider, skipped };
    } catch (err) {
      skipped.push({ provider: c.provider, reason: errorMessage(err).split('\n')[0] ?? 'failed' });
    }
  }
  const hint = choice === 'tensorflow' ? ' (install @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu; they download libtensorflow at install time)' : '';
  throw new BackendUnavailableError(
    `backend "${choice}" is not available${hint}: ${skipped.map((s) => `${s.provider}: ${s.reason}`).join('; ')}`,
  );
}
