import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deadWorkers, FIRST_UNIT_BACKUP_FACTOR, medianBusyMs, stalledWorkers, type ObservedWorker } from '../../coordinator/failure-detector.js';

const settings = { deadAfterMs: 5000, backupAfter: 3, minBackupMs: 1000 };
const w = (id: string, o: Partial<ObservedWorker>): ObservedWorker => ({ id, lastSeenMs: 0, lastProgressMs: 0, busy: false, ...o });

void describe('failure detector', () => {
  void it('declares an idle worker dead after deadAfterMs of silence', () => {
    assert.deepEqual(deadWorkers([w('a', { lastSeenMs: 0 })], 5000, settings), []);
    assert.deepEqual(deadWorkers([w('a', { lastSeenMs: 0 })], 5001, settings).map((d) => d.id), ['a']);
  });

  void it('gives a busy worker deadAfterMs too, however long its units take (it heartbeats while it computes)', () => {
    const slow = w('s', { busy: true, meanBusyMs: 4000 });
    assert.deepEqual(deadWorkers([slow], 5000, settings), []);
    assert.deepEqual(deadWorkers([slow], 5001, settings), [{ id: 's', silentMs: 5001, limitMs: 5000 }], 'not 3 × 4 s');
    const fresh = w('f', { busy: true });
    assert.deepEqual(deadWorkers([fresh], 5001, settings).map((d) => d.id), ['f'], 'no first-unit grace');
    // Heard from recently: alive, busy or not.
    assert.deepEqual(deadWorkers([w('b', { busy: true, meanBusyMs: 60_000, lastSeenMs: 9000 }), w('i', { lastSeenMs: 9000 })], 14_000, settings), []);
  });

  void it('finds stalled busy workers past backupAfter × median (and minBackupMs), never without a median', () => {
    const workers = [w('a', { busy: true, meanBusyMs: 200, lastProgressMs: 0 }), w('b', { busy: true, meanBusyMs: 200, lastProgressMs: 900 }), w('c', { meanBusyMs: 200 })];
    assert.equal(medianBusyMs(workers), 200);
    assert.deepEqual(stalledWorkers(workers, 1000, settings), [], 'threshold is max(1000, 600)');
    assert.deepEqual(stalledWorkers(workers, 1001, settings), ['a']);
    assert.deepEqual(stalledWorkers(workers, 5000, { ...settings, backupAfter: 0 }), [], 'backups off');
    assert.deepEqual(stalledWorkers([w('x', { busy: true })], 1e9, settings), [], 'no unit time known yet');
    // A worker still on its first unit (warm-up included) gets FIRST_UNIT_BACKUP_FACTOR × the threshold.
    const newcomer = [w('n', { busy: true, lastProgressMs: 0 }), w('c', { meanBusyMs: 200 })];
    assert.deepEqual(stalledWorkers(newcomer, FIRST_UNIT_BACKUP_FACTOR * 1000, settings), []);
    assert.deepEqual(stalledWorkers(newcomer, FIRST_UNIT_BACKUP_FACTOR * 1000 + 1, settings), ['n']);
  });
});
