// Streamed tables end to end (issue 17 item 4): the same two-task job on the Seattle weather
// table with `stream:` (a tiny cache and small blocks, so chunks are evicted and read again),
// read as one CSV, as JSON lines cut into other chunks, and as Parquet split into 3 files of
// small row groups, trains with the real `mtl run` to bitwise the same weights with 1 and 3
// workers; the workers' logs show they read by the coordinator's plan and their caches evicted.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { SEATTLE_CSV, seattleJob, writeSeattleJsonl, writeSeattleParquet } from '../helpers/table-fixtures.js';
import { tempDir } from '../helpers/temp-dirs.js';

const dir = tempDir('mtl-stream-e2e-');
writeSeattleJsonl(path.join(dir, 'seattle.jsonl'));
mkdirSync(path.join(dir, 'parts'));
writeSeattleParquet(path.join(dir, 'parts'), 3, 61);

function streamedJob(dataset: string, file: string, chunk: string): object {
  return seattleJob(dataset, file, { name: `seattle-stream-${dataset}`, steps: 8, dataOptions: { stream: { cache: '6KB', blockRows: 40, window: 2, chunk } } });
}

/** The weights, and the evictions the workers' caches logged. */
async function trainedWeights(dataset: string, file: string, chunk: string, workers: number): Promise<{ weights: Buffer; evictions: number[] }> {
  const out = tempDir(`mtl-stream-${dataset}-${workers}-`);
  const job = writeJob(streamedJob(dataset, file, chunk), dir, `${dataset}-${workers}.yaml`);
  const r = await runCli(['run', job, '--workers', String(workers), '--out', out, '--quiet'], { MTL_LOG_LEVEL: 'info' });
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as { status: string };
  assert.equal(summary.status, 'succeeded');
  const reports = [...r.stderr.matchAll(/streamed data read .*/g)].map((m) => m[0]);
  // Workers read by the coordinator's plan (Welcome.data_plan_json), never scanning the files.
  for (const line of reports) assert.match(line, /\bscanned=false\b/);
  const evictions = reports.map((line) => Number(/\bevictions=(\d+)/.exec(line)?.[1]));
  return { weights: readFileSync(path.join(out, 'model', 'weights.bin')), evictions };
}

void describe('streamed tables end to end', () => {
  void it('trains CSV, JSON lines and 3 Parquet files to bitwise equal weights with 1 and 3 workers, evicting chunks', async () => {
    const csv = await trainedWeights('csv', SEATTLE_CSV, '4KB', 1);
    const jsonl = await trainedWeights('jsonl', 'seattle.jsonl', '3KB', 3);
    const parquet = await trainedWeights('parquet', 'parts/part-*.parquet', '4KB', 1);
    const parquet3 = await trainedWeights('parquet', 'parts/part-*.parquet', '4KB', 3);
    assert.ok(csv.weights.length > 0);
    assert.ok(jsonl.weights.equals(csv.weights), 'jsonl (3 workers) differs from csv (1 worker)');
    assert.ok(parquet.weights.equals(csv.weights), 'parquet (1 worker) differs from csv (1 worker)');
    assert.ok(parquet3.weights.equals(csv.weights), 'parquet (3 workers) differs from csv (1 worker)');
    for (const [name, run, workers] of [['csv', csv, 1], ['jsonl', jsonl, 3], ['parquet', parquet, 1], ['parquet', parquet3, 3]] as const) {
      assert.equal(run.evictions.length, workers, `${name}: one cache report per worker`);
      assert.ok(run.evictions.some((e) => e > 0), `${name}: no worker's cache evicted a chunk (${run.evictions.join(', ')})`);
    }
  });
});
