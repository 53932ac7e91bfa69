// Remote data references: which strings of a job's data specs are nats:// or http(s):// data,
// how they parse, and the messages for malformed ones (each names the reference).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isRemoteData, parseDataRef, remoteDataRefs } from '../../common/data-store/urls.js';
import { resolveDataPath } from '../../common/data-store/resolve.js';
import { DatasetError } from '../../common/errors.js';

void describe('remote data references', () => {
  void it('finds every remote string in the tasks\' data specs, nested or not, once each, in task order', () => {
    const tasks = {
      a: { data: { dataset: 'csv', path: 'nats://ds/x.csv', features: ['f'], target: 'y' } },
      b: { data: { dataset: 'npy', inputs: 'https://example.test/X.npy', target: 'http://example.test/y.npy', test: { inputs: 'nats://ds/tx.npy', target: 'local.npy' } } },
      c: { data: { dataset: 'csv', path: 'nats://ds/x.csv', features: ['nats_col'], target: 'y' } },
    };
    assert.deepEqual(remoteDataRefs(tasks), ['nats://ds/x.csv', 'https://example.test/X.npy', 'http://example.test/y.npy', 'nats://ds/tx.npy']);
    assert.equal(isRemoteData('data/nats://x'), false);
    assert.equal(isRemoteData('HTTPS://example.test/a'), true);
  });

  void it('parses nats:// references into dataset and path, with globs marked', () => {
    assert.deepEqual(parseDataRef('nats://my-data/parts/a.csv'), { kind: 'nats', ref: 'nats://my-data/parts/a.csv', dataset: 'my-data', inside: 'parts/a.csv', glob: false });
    assert.deepEqual(parseDataRef('nats://my-data'), { kind: 'nats', ref: 'nats://my-data', dataset: 'my-data', inside: '', glob: false });
    assert.equal((parseDataRef('nats://d/part-*.parquet') as { glob: boolean }).glob, true);
    assert.throws(() => parseDataRef('nats://bad.name/x'), (e) => e instanceof DatasetError && e.message.startsWith('nats://bad.name/x: "bad.name" is not a dataset name'));
    assert.throws(() => parseDataRef('nats://d/../x'), (e) => e instanceof DatasetError && /may not contain "\." or "\.\."/.test(e.message));
  });

  void it('parses http(s) URLs with an optional #sha256= digest, and refuses any other fragment', () => {
    const hex = 'ab'.repeat(32);
    assert.deepEqual(parseDataRef(`https://example.test/a.csv#sha256=${hex.toUpperCase()}`), { kind: 'http', ref: `https://example.test/a.csv#sha256=${hex.toUpperCase()}`, url: 'https://example.test/a.csv', sha256: hex });
    assert.throws(() => parseDataRef('https://example.test/a.csv#top'), (e) => e instanceof DatasetError && /#sha256=<64 hex digits>/.test(e.message));
  });

  void it('resolves local paths against the job directory, and a remote one only once fetched', () => {
    assert.equal(resolveDataPath('data/a.csv', '/jobs/x'), '/jobs/x/data/a.csv');
    assert.equal(resolveDataPath('/abs/a.csv', '/jobs/x'), '/abs/a.csv');
    assert.throws(() => resolveDataPath('https://example.test/never.csv', '/'), (e) => e instanceof DatasetError && e.message.startsWith('https://example.test/never.csv: remote data was not fetched'));
  });
});
