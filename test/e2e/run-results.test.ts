// Results out without the coordinator's disk: a run with --nats stores its run directory in the
// NATS object store when it ends, and `mtl fetch RUN --nats URL` brings the same bytes to
// another directory; a file damaged in the store is refused, never written.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Objm } from '@nats-io/obj';
import { ControlPlane } from '../../common/control/plane.js';
import { RESULTS_BUCKET } from '../../common/data-store/run-results.js';
import { silentLogger } from '../../common/logging.js';
import { runCli } from '../helpers/cli-process.js';
import { smallMultiMnistJob, writeJob } from '../helpers/jobs.js';
import { NatsServer } from '../helpers/nats-server.js';
import { tempDir } from '../helpers/temp-dirs.js';

/** Every file under `dir`, relative, sorted. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

void describe('mtl fetch: results from the NATS object store', () => {
  let nats: NatsServer;
  before(async () => {
    nats = await NatsServer.start();
  });
  after(async () => {
    await nats.stop();
  });

  void it('brings back every file of the run directory, byte for byte; refuses a damaged one, an unknown run and a used directory', async () => {
    const out = tempDir('mtl-results-run-');
    const run = await runCli(['run', writeJob(smallMultiMnistJob({ steps: 6 })), '--out', out, '--nats', nats.url]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /results stored in NATS/);
    const runId = (JSON.parse(readFileSync(path.join(out, 'summary.json'), 'utf8')) as { runId: string }).runId;

    const fetched = path.join(tempDir('mtl-results-fetch-'), 'copy');
    const r = await runCli(['fetch', runId, '--nats', nats.url, '--out', fetched]);
    assert.equal(r.code, 0, r.stderr);
    const files = filesUnder(out);
    assert.ok(files.includes('summary.json') && files.includes(path.join('model', 'weights.bin')), files.join(', '));
    assert.match(r.stdout, new RegExp(`fetched run ${runId}: ${files.length} file\\(s\\)`));
    assert.deepEqual(filesUnder(fetched), files);
    for (const f of files) assert.ok(readFileSync(path.join(fetched, f)).equals(readFileSync(path.join(out, f))), `${f} differs`);

    // Into a directory that holds files: only with --force.
    const again = await runCli(['fetch', runId, '--nats', nats.url, '--out', fetched]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /is not empty .*--force/);
    writeFileSync(path.join(fetched, 'summary.json'), 'overwritten');
    assert.equal((await runCli(['fetch', runId, '--nats', nats.url, '--out', fetched, '--force'])).code, 0);
    assert.ok(readFileSync(path.join(fetched, 'summary.json')).equals(readFileSync(path.join(out, 'summary.json'))));

    const unknown = await runCli(['fetch', 'no-such-run', '--nats', nats.url, '--out', tempDir('mtl-results-none-')]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /NATS holds no results of run no-such-run/);

    // A stored file whose bytes no longer match the manifest's digest.
    const plane = await ControlPlane.connect({ url: nats.url, name: 'tamper', logger: silentLogger });
    try {
      const store = await new Objm(plane.nc).open(RESULTS_BUCKET);
      await store.putBlob({ name: `${runId}/summary.json` }, new TextEncoder().encode('{"tampered":true}'));
    } finally {
      await plane.close();
    }
    const damaged = path.join(tempDir('mtl-results-bad-'), 'copy');
    const bad = await runCli(['fetch', runId, '--nats', nats.url, '--out', damaged]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /results of run .*: summary\.json: received 17 bytes with SHA-256 [0-9a-f]{64}, the manifest says \d+ bytes/);
    assert.ok(!existsSync(path.join(damaged, 'summary.json')), 'a damaged file is not written');
    assert.deepEqual(existsSync(damaged) ? readdirSync(damaged).filter((f) => f.includes('.part-')) : [], [], 'no partial file is left');
  });
});
