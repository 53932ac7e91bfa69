// The selected backend is process-global. Order matters here: every test leaves the process on
// cpu or wasm, and the file ends on wasm.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { BackendUnavailableError } from '../../common/errors.js';
import { selectBackend, type ModuleImporter } from '../../worker/backend.js';

const GPU = '@tensorflow/tfjs-node-gpu';
const NODE = '@tensorflow/tfjs-node';
const NATIVE = [GPU, NODE];

/** The real importer, except that the native packages are absent. */
const withoutNative: ModuleImporter = (specifier) =>
  NATIVE.includes(specifier) ? Promise.reject(new Error(`Cannot find package '${specifier}'`)) : import(specifier);

void describe('selectBackend', () => {
  before(() => {
    tf.enableProdMode();
  });

  void it('cpu selects the cpu backend', async () => {
    const selected = await selectBackend('cpu');
    assert.deepEqual(selected, { name: 'cpu', device: 'cpu', provider: '@tensorflow/tfjs', skipped: [] });
    assert.equal(tf.getBackend(), 'cpu');
  });

  void it('tensorflow without the native packages fails, naming both and how to install them', async () => {
    const tried: string[] = [];
    const importer: ModuleImporter = (specifier) => {
      tried.push(specifier);
      return withoutNative(specifier);
    };
    await assert.rejects(selectBackend('tensorflow', importer), (err: unknown) => {
      assert.ok(err instanceof BackendUnavailableError);
      assert.equal(err.code, 'BACKEND_UNAVAILABLE');
      assert.match(err.message, /backend "tensorflow" is not available/);
      assert.match(err.message, /install @tensorflow\/tfjs-node or @tensorflow\/tfjs-node-gpu/);
      // Each package appears with the reason it failed.
      assert.ok(err.message.includes(`${GPU}: Cannot find package '${GPU}'`), err.message);
      assert.ok(err.message.includes(`${NODE}: Cannot find package '${NODE}'`), err.message);
      return true;
    });
    assert.deepEqual(tried, [GPU, NODE], 'tries the GPU package first');
    assert.equal(tf.getBackend(), 'cpu', 'a failed selection leaves the current backend alone');
  });

  void it('auto falls past a native package that loads without registering its backend', async () => {
    // The tfjs-node import "succeeds" but registers nothing: setBackend('tensorflow') must fail
    // and auto must move on to wasm rather than report success.
    const importer: ModuleImporter = (specifier) => (specifier === NODE ? Promise.resolve({}) : withoutNative(specifier));
    const selected = await selectBackend('auto', importer);
    assert.equal(selected.name, 'wasm');
    assert.deepEqual(
      selected.skipped.map((s) => s.provider),
      NATIVE,
    );
    assert.match(selected.skipped[1]?.reason ?? '', /tensorflow/);
    assert.equal(tf.getBackend(), 'wasm');
    await selectBackend('cpu');
  });

  void it('auto on this machine (real importer) selects wasm and lists the native packages as skipped', async () => {
    const selected = await selectBackend('auto');
    assert.equal(selected.name, 'wasm');
    assert.equal(selected.device, 'cpu');
    assert.equal(selected.provider, '@tensorflow/tfjs-backend-wasm');
    assert.deepEqual(
      selected.skipped.map((s) => s.provider),
      NATIVE,
    );
    for (const s of selected.skipped) assert.ok(s.reason.length > 0 && !s.reason.includes('\n'), `one-line reason for ${s.provider}`);
    assert.equal(tf.getBackend(), 'wasm');
  });

  void it('wasm selects wasm, and a matMul computes on it', async () => {
    const selected = await selectBackend('wasm');
    assert.deepEqual(selected, { name: 'wasm', device: 'cpu', provider: '@tensorflow/tfjs-backend-wasm', skipped: [] });
    assert.equal(tf.getBackend(), 'wasm');
    const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = tf.tensor2d([7, 8, 9, 10, 11, 12], [3, 2]);
    const c = tf.matMul(a, b);
    try {
      assert.deepEqual(Array.from(c.dataSync()), [58, 64, 139, 154]);
    } finally {
      tf.dispose([a, b, c]);
    }
  });

  void it('wasm through an importer that cannot load it is BackendUnavailableError', async () => {
    const importer: ModuleImporter = (specifier) => Promise.reject(new Error(`no ${specifier}`));
    await assert.rejects(selectBackend('wasm', importer), (err: unknown) => {
      assert.ok(err instanceof BackendUnavailableError);
      assert.match(err.message, /@tensorflow\/tfjs-backend-wasm: no @tensorflow\/tfjs-backend-wasm/);
      assert.doesNotMatch(err.message, /install @tensorflow\/tfjs-node/, 'the native install hint is only for tensorflow');
      return true;
    });
    assert.equal(tf.getBackend(), 'wasm');
  });
});
