import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isDone, newUnit, Phase } from '../../coordinator/units.js';

function phase() {
  const units = [newUnit('train', 'a', 0, 1, 8, 16), newUnit('train', 'b', 0, 1, 8, 16)];
  let resolved = false;
  const p = new Phase('train', 3, 3, units, () => (resolved = true), () => undefined);
  return { p, units, resolved: () => resolved };
}

void describe('unit ledger', () => {
  void it('gives every assignment its own id, and the first result wins', () => {
    const { p, units } = phase();
    const first = p.assign(units[0]!, 'w1', 0);
    const backup = p.assign(units[0]!, 'w2', 10, true);
    assert.notEqual(first.id, backup.id);
    assert.equal(p.lookup(backup.id)?.unit, units[0]);
    units[0]!.train = { sampleCount: 8, loss: 1, grads: new Float32Array(4) };
    const toCancel = p.complete(units[0]!, backup);
    assert.deepEqual(toCancel, [first]);
    assert.ok(!first.active && !backup.active && isDone(units[0]!));
    assert.equal(units[0]!.doneBy, 'w2');
  });

  void it('releasing a worker returns the units no one else is computing', () => {
    const { p, units } = phase();
    p.assign(units[0]!, 'w1', 0);
    p.assign(units[1]!, 'w1', 0);
    p.assign(units[1]!, 'w2', 0, true);
    assert.deepEqual(p.release('w1'), [units[0]]);
    assert.deepEqual(p.unassigned(), [units[0]]);
    assert.deepEqual([...p.activeByWorker().keys()], ['w2']);
  });
});
