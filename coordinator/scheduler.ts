// Unit assignment: pure logic, no I/O, no clock. Which worker computes a unit never changes
// the result (docs/design.md, determinism rule), only how fast a step finishes.
//
// Greedy list scheduling: units are placed in their (task, shard) order on the worker that
// would finish them earliest, using each worker's measured unit time. A unit stays with the
// worker that had the same (task, shard) last time unless that costs more than half a unit
// of imbalance: warm caches and a stable picture in the logs.

export interface UnitToPlace {
  id: string;
  /** Affinity key, e.g. `train/left/0`: units with the same key prefer the same worker. */
  key: string;
}

export interface WorkerCapacity {
  id: string;
  /** Measured mean unit time in ms; undefined until the worker has finished a unit. */
  unitMs?: number;
}

export type Placement = Map<string, string[]>;

export function placeUnits(units: readonly UnitToPlace[], workers: readonly WorkerCapacity[], previous: ReadonlyMap<string, string> = new Map()): Placement {
  const placement: Placement = new Map(workers.map((w) => [w.id, []]));
  if (workers.length === 0) {
    if (units.length > 0) throw new RangeError('no workers to place units on');
    return placement;
  }
  const known = workers.map((w) => w.unitMs).filter((ms): ms is number => ms !== undefined && ms > 0).sort((a, b) => a - b);
  const fallback = known.length > 0 ? known[Math.floor(known.length / 2)]! : 1;
  const cost = new Map(workers.map((w) => [w.id, w.unitMs !== undefined && w.unitMs > 0 ? w.unitMs : fallback]));
  const load = new Map(workers.map((w) => [w.id, 0]));

  for (const unit of units) {
    let best = workers[0]!.id;
    let bestFinish = Infinity;
    for (const w of workers) {
      const finish = load.get(w.id)! + cost.get(w.id)!;
      if (finish < bestFinish) {
        best = w.id;
        bestFinish = finish;
      }
    }
    const sticky = previous.get(unit.key);
    if (sticky !== undefined && sticky !== best && load.has(sticky)) {
      const stickyCost = cost.get(sticky)!;
      if (load.get(sticky)! + stickyCost <= bestFinish + 0.5 * stickyCost) best = sticky;
    }
    load.set(best, load.get(best)! + cost.get(best)!);
    placement.get(best)!.push(unit.id);
  }
  return placement;
}
