// The table formats end to end (issue 17's acceptance, formats part): the same two-task job on
// the Seattle weather table, read as CSV, as JSON lines and as Parquet split into 3 files,
// trains with the real `mtl run` to bitwise the same weights with 1 and 3 workers; and a bad
// cell stops `mtl validate` with exit 2 naming file, line and column.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli-process.js';
import { writeJob } from '../helpers/jobs.js';
import { SEATTLE_CSV, seattleJob, writeSeattleJsonl, writeSeattleParquet } from '../helpers/table-fixtures.js';
import { tempDir } from '../helpers/temp-dirs.js';

const dir = tempDir('mtl-formats-e2e-');
writeSeattleJsonl(path.join(dir, 'seattle.jsonl'));
mkdirSync(path.join(dir, 'parts'));
writeSeattleParquet(path.join(dir, 'parts'), 3);

function tableJob(dataset: string, file: string): object {
  return seattleJob(dataset, file, { name: `seattle-${dataset}`, steps: 6 });
}

async function trainedWeights(dataset: string, file: string, workers: number): Promise<Buffer> {
  const out = tempDir(`mtl-formats-${dataset}-${workers}-`);
  const r = await runCli(['run', writeJob(tableJob(dataset, file), dir, `${dataset}-${workers}.yaml`), '--workers', String(workers), '--out', out, '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as { status: string };
  assert.equal(summary.status, 'succeeded');
  return readFileSync(path.join(out, 'model', 'weights.bin'));
}

void describe('table formats end to end', () => {
  void it('trains CSV, JSON lines and 3 Parquet files to bitwise equal weights, with 1 and 3 workers', async () => {
    const csv = await trainedWeights('csv', SEATTLE_CSV, 1);
    const jsonl = await trainedWeights('jsonl', 'seattle.jsonl', 3);
    const parquet = await trainedWeights('parquet', 'parts/part-*.parquet', 1);
    const parquet3 = await trainedWeights('parquet', 'parts/part-*.parquet', 3);
    assert.ok(csv.length > 0);
    assert.ok(jsonl.equals(csv), 'jsonl (3 workers) differs from csv (1 worker)');
    assert.ok(parquet.equals(csv), 'parquet (1 worker) differs from csv (1 worker)');
    assert.ok(parquet3.equals(csv), 'parquet (3 workers) differs from csv (1 worker)');
  });

  void it('stops mtl validate with exit 2 naming the file, line and column of a bad cell', async () => {
    const lines = readFileSync(path.join(dir, 'seattle.jsonl'), 'utf8').split('\n');
    lines[41] = lines[41]!.replace(/"wind":[^,}]+/, '"wind":"calm"');
    writeFileSync(path.join(dir, 'bad.jsonl'), lines.join('\n'));
    const r = await runCli(['validate', writeJob(tableJob('jsonl', 'bad.jsonl'), dir, 'bad.yaml')]);
    assert.equal(r.code, 2, r.stderr);
    assert.ok(r.stderr.includes(`${path.join(dir, 'bad.jsonl')}: line 42, column "wind": expected a number, got "calm" (a string)`), r.stderr);
  });
});
