import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConflictMonitor } from '../../coordinator/conflict-monitor.js';

const cos = (ab: number, ac = 0.5, bc = 0.5) => [
  [1, ab, ac],
  [ab, 1, bc],
  [ac, bc, 1],
];

void describe('ConflictMonitor', () => {
  void it('warns once when a pair stays in conflict for the window, and re-arms after it ends', () => {
    const m = new ConflictMonitor(['a', 'b', 'c'], 3);
    assert.deepEqual(m.observe(cos(-0.2)), []);
    assert.deepEqual(m.observe(cos(-0.4)), []);
    const w = m.observe(cos(-0.6));
    assert.equal(w.length, 1);
    assert.deepEqual(w[0]!.tasks, ['a', 'b']);
    assert.equal(w[0]!.steps, 3);
    assert.ok(Math.abs(w[0]!.meanCosine + 0.4) < 1e-12);
    assert.deepEqual(m.observe(cos(-0.6)), [], 'reported once per streak');
    assert.deepEqual(m.observe(cos(0.1)), []);
    m.observe(cos(-0.1));
    m.observe(cos(-0.1));
    assert.equal(m.observe(cos(-0.1)).length, 1, 'a new streak is reported again');
  });

  void it('ignores pairs that are not in conflict and is off with window 0', () => {
    const m = new ConflictMonitor(['a', 'b', 'c'], 1);
    assert.deepEqual(m.observe(cos(0, 0.3, -0.01)).map((w) => w.tasks), [['b', 'c']]);
    const off = new ConflictMonitor(['a', 'b', 'c'], 0);
    for (let i = 0; i < 10; i++) assert.deepEqual(off.observe(cos(-1, -1, -1)), []);
  });
});
