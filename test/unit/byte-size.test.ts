// Sizes as flags and job options take them: the whole text is a number and a unit.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { parseByteSize } from '../../common/byte-size.js';
import { byteSize } from '../../cli/data-options.js';

void describe('byte sizes', () => {
  void it('reads binary and decimal-looking units as powers of 1024, and plain numbers as bytes', () => {
    assert.equal(parseByteSize('500MiB'), 500 * 2 ** 20);
    assert.equal(parseByteSize('500MB'), 500 * 2 ** 20);
    assert.equal(parseByteSize('10 GiB'), 10 * 2 ** 30);
    assert.equal(parseByteSize('1.5KB'), 1536);
    assert.equal(parseByteSize('65536'), 65536);
    assert.equal(byteSize('256MiB'), 256 * 2 ** 20, '--cache-max-bytes 256MiB is not 256 bytes');
  });

  void it('refuses text that is not all number and unit', () => {
    for (const bad of ['64 apples', 'MiB', '', '0', '-5MB', '5 MiB extra']) {
      assert.equal(parseByteSize(bad), undefined, bad);
      assert.throws(() => byteSize(bad), InvalidArgumentError, bad);
    }
  });
});
