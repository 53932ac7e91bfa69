import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AssignmentIds, isDone, newUnit, Phase } from '../../coordinator/units.js';

function phase() {
  const units = [newUnit('train', 'a', 0, 1, 8, 16), newUnit('train', 'b', 0, 1, 8, 16)];
  let resolved = false;
  const p = new Phase('train', 3, 3, units, () => (resolved = true), () => undefined, new AssignmentIds());
  return { p, units, resolved: () => resolved };
}

void describe('unit ledger', () => {
  void it('gives every assignment its own id, and the first result wins', () => {
    const { p, units } = phase();
    const first = p.assign(units[0]!, 'w1', 0);
    const backup = p.assign(units[0]!, 'w2', 10, { backup: true });
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
    p.assign(units[1]!, 'w2', 0, { backup: true });
    assert.deepEqual(p.release('w1'), [units[0]]);
    assert.deepEqual(p.unassigned(), [units[0]]);
    assert.deepEqual([...p.activeByWorker().keys()], ['w2']);
  });

  void it('never gives two assignments of one run the same id, even in phases of the same step and kind', () => {
    // The lookahead phases of one step, or a stage's evaluations, are phases of the same step and
    // kind: a late result of the first must not match a live assignment of the second.
    const ids = new AssignmentIds();
    const seen = new Set<string>();
    for (let round = 0; round < 3; round++) {
      const units = [newUnit('lookahead', 'a', 0, 1, 8, 0), newUnit('lookahead', 'b', 0, 1, 8, 0)];
      const p = new Phase('lookahead', 7, 0x8000_0000 + round, units, () => undefined, () => undefined, ids);
      for (const u of units) {
        for (const worker of ['w1', 'w2']) {
          const { id } = p.assign(u, worker, 0);
          assert.ok(!seen.has(id), `id ${id} handed out twice`);
          seen.add(id);
        }
      }
    }
    assert.equal(seen.size, 12);
  });
});
