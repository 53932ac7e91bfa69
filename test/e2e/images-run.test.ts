// `mtl run` on a tiny image folder (PNG and JPEG files of several sizes, resized; labels from
// folders and from a table): real worker processes decode the images themselves, and 1 and 2
// workers train to bitwise the same weights (decoding and resizing are pure functions of the bytes).
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli-process.js';
import { pngFile } from '../helpers/images.js';
import { writeJob } from '../helpers/jobs.js';
import { REPO_ROOT } from '../helpers/paths.js';
import { tempDir } from '../helpers/temp-dirs.js';

/** 20 images in dark/ and bright/, sizes 6×6 to 10×9, one a JPEG; labels.csv gives a level per image. */
function imageFolder(): string {
  const dir = tempDir('mtl-images-run-');
  const rows = ['file,level'];
  for (let i = 0; i < 20; i++) {
    const bright = i % 2 === 1;
    const [w, h] = [6 + (i % 5), 6 + (i % 4)];
    const base = bright ? 150 + 5 * i : 10 + 5 * i;
    const samples = Array.from({ length: w * h * 3 }, (_, k) => (base + ((k * 7) % 40)) % 256);
    const file = `${bright ? 'bright' : 'dark'}/${String(i).padStart(2, '0')}.png`;
    mkdirSync(path.join(dir, 'imgs', path.dirname(file)), { recursive: true });
    writeFileSync(path.join(dir, 'imgs', file), pngFile({ width: w, height: h, colorType: 2, samples }));
    rows.push(`imgs/${file},${base / 255}`);
  }
  copyFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'images', 'rgb-baseline.jpg'), path.join(dir, 'imgs', 'bright', 'photo.jpg'));
  rows.push('imgs/bright/photo.jpg,0.5');
  writeFileSync(path.join(dir, 'labels.csv'), rows.join('\n') + '\n');
  return dir;
}

void describe('mtl run on an image folder', () => {
  void it('trains a folder-class task and a table-regression task; 1 and 2 workers give bitwise the same weights', async () => {
    const dir = imageFolder();
    const data = (target: string) => ({ dataset: 'images', path: 'imgs', labels: 'labels.csv', target, size: [8, 8], channels: 1, resize: 'area', testFraction: 0.25 });
    const job = writeJob(
      {
        name: 'tiny-images',
        seed: 3,
        model: {
          input: [8, 8, 1],
          trunk: [{ conv2d: { filters: 4, kernelSize: 3, activation: 'relu' } }, { flatten: {} }, { dense: { units: 8, activation: 'relu' } }],
          heads: { folder: [{ dense: { units: 2, activation: 'softmax' } }], level: [{ dense: { units: 1 } }] },
        },
        tasks: {
          folder: { loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'], data: data('folder') },
          level: { loss: 'meanSquaredError', metrics: ['mae'], data: data('level') },
        },
        training: { steps: 8, batchSize: 8, shardsPerTask: 2, optimizer: { name: 'adam', learningRate: 0.01 } },
      },
      dir,
    );
    const weights: Buffer[] = [];
    for (const workers of [1, 2]) {
      const out = tempDir(`mtl-images-run-${workers}-`);
      const r = await runCli(['run', job, '--workers', String(workers), '--out', out, '--json', '--quiet']);
      assert.equal(r.code, 0, r.stderr);
      const summary = JSON.parse(r.stdout) as { status: string; tasks: Record<string, { samples: number; accuracy?: number; mae?: number }> };
      assert.equal(summary.status, 'succeeded');
      assert.ok(summary.tasks.folder?.accuracy !== undefined && summary.tasks.level?.mae !== undefined, JSON.stringify(summary.tasks));
      weights.push(readFileSync(path.join(out, 'model', 'weights.bin')));
    }
    assert.ok(weights[0]!.equals(weights[1]!), 'weights differ between 1 and 2 workers');
  });

  void it('fails with exit 2 naming a corrupt image before training', async () => {
    const dir = imageFolder();
    writeFileSync(path.join(dir, 'imgs', 'dark', '04.png'), readFileSync(path.join(dir, 'imgs', 'dark', '04.png')).subarray(0, 50));
    const data = { dataset: 'images', path: 'imgs', target: 'folder', size: [8, 8], channels: 1 };
    const job = writeJob(
      {
        name: 'corrupt-images',
        model: { input: [8, 8, 1], trunk: [{ flatten: {} }], heads: { folder: [{ dense: { units: 2, activation: 'softmax' } }] } },
        tasks: { folder: { loss: 'sparseCategoricalCrossentropy', data } },
        training: { steps: 2, batchSize: 4, optimizer: { name: 'sgd', learningRate: 0.1 } },
      },
      dir,
    );
    const out = path.join(tempDir('mtl-images-bad-'), 'run');
    const r = await runCli(['run', job, '--out', out]);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(path.join(dir, 'imgs', 'dark', '04.png')), r.stderr);
    assert.match(r.stderr, /corrupt or truncated PNG/);
  });
});
