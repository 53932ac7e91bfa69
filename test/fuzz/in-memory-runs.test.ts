// Fuzzing the coordinator's message handling with complete runs: a real TrainingRun and real
// WorkerSessions (messages through the real Connect serializer), an honest fake worker and a
// second one that answers its units with fast-check-generated hostile episodes before (or
// instead of) its honest result. Invariants: nothing escapes the handlers, the run succeeds
// with weights bitwise equal to an undisturbed run's, and the counters account for every
// bad message. Also: the non-finite policies (fail, skip-step) under fuzzing.
// `MTL_FUZZ_RUNS=<n>` scales the case counts (npm run fuzz); see episodes.ts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { NonFiniteError } from '../../common/errors.js';
import { taskNames } from '../../common/job-spec.js';
import { DEFAULT_SESSION_LIMITS } from '../../coordinator/worker-session.js';
import { MAX_INVALID_RESULTS } from '../../coordinator/result-intake.js';
import { FAKE_CHUNK_BYTES, fuzzJob, InMemoryHarness, type InMemoryOutcome, type Interceptor } from '../helpers/in-memory-run.js';
import { episodeArb, fuzzParams, fuzzRuns, playEpisode, type Episode } from './episodes.js';
import { sameFloatBits } from '../helpers/numeric.js';

const escapedGlobally: unknown[] = [];
const onUnhandled = (err: unknown) => escapedGlobally.push(err);


interface Tally {
  certain: number;
  possible: number;
  replays: number;
  nonFinite: number;
  episodes: number;
}

/** An interceptor that plays `plan[i]` for the i-th unit the fuzzed worker answers. */
function planInterceptor(harness: InMemoryHarness, plan: readonly Episode[][], thenHonest: boolean, tally: Tally): Interceptor {
  const cost = new Map<string, number>();
  const tasks = taskNames(harness.job);
  let i = 0;
  return (unit, honest, worker) => {
    const episodes = plan[i++] ?? [];
    const key = `${unit.kind}/${unit.step}/${unit.task}/${unit.shard}`;
    let targeted = false;
    for (const episode of episodes) {
      // Each (unit, step, task, shard) may lose at most MAX_INVALID_RESULTS - 1 attempts: one more fails the run, by design.
      const canTarget = !targeted && (cost.get(key) ?? 0) < MAX_INVALID_RESULTS - 1;
      const played = playEpisode(episode, unit, honest, worker, {
        canTarget,
        chunkBytes: FAKE_CHUNK_BYTES,
        tasks,
        strangerIds: worker.other?.assigned.map((u) => u.unitId) ?? [],
      });
      tally.certain += played.certain;
      tally.possible += played.possible;
      tally.replays += played.replays;
      tally.nonFinite += played.nonFinite;
      tally.episodes++;
      if (played.targeted) {
        targeted = true;
        cost.set(key, (cost.get(key) ?? 0) + 1);
      }
    }
    // After a targeted episode the unit is reassigned; an honest copy sent anyway is late and dropped.
    return !targeted || thenHonest;
  };
}

// Now and then a flood: enough bad messages that the session's rejection budget closes it.
const planArb = fc.tuple(
  fc.oneof({ weight: 9, arbitrary: fc.array(fc.array(episodeArb, { maxLength: 3 }), { maxLength: 30 }) }, { weight: 1, arbitrary: fc.array(fc.array(episodeArb, { minLength: 4, maxLength: 10 }), { minLength: 10, maxLength: 30 }) }),
  fc.boolean(),
);

void describe('fuzz: hostile worker messages in complete in-memory runs', () => {
  before(() => process.on('unhandledRejection', onUnhandled).on('uncaughtException', onUnhandled));
  after(() => {
    process.off('unhandledRejection', onUnhandled).off('uncaughtException', onUnhandled);
    assert.deepEqual(escapedGlobally, [], 'no exception or rejection escaped');
  });

  const skipUnit = new InMemoryHarness(fuzzJob({ nonFinite: 'skip-unit' }));
  let reference: InMemoryOutcome;

  void it('an undisturbed run is the reference, and repeats bitwise', async () => {
    reference = await skipUnit.run();
    assert.equal(reference.status, 'succeeded', reference.error?.message);
    assert.equal(reference.rejectedMessages, 0);
    const again = await skipUnit.run();
    assert.ok(sameFloatBits(again.params, reference.params));
    assert.ok(!sameFloatBits(reference.params, skipUnit.prepared.initialParams), 'training changed the weights');
  });

  void it('hostile episodes (training.nonFinite: skip-unit): same weights as undisturbed, every bad message counted, none applied', async (t) => {
    const runs = fuzzRuns(1200);
    const started = performance.now();
    let episodes = 0;
    let closed = 0;
    await fc.assert(
      fc.asyncProperty(planArb, async ([plan, thenHonest]) => {
        const tally: Tally = { certain: 0, possible: 0, replays: 0, nonFinite: 0, episodes: 0 };
        const out = await skipUnit.run({ intercept: planInterceptor(skipUnit, plan, thenHonest, tally) });
        episodes += tally.episodes;
        const escaped = out.workers.flatMap((w) => w.escaped);
        assert.deepEqual(escaped, [], 'an exception escaped a message handler');
        assert.equal(out.status, 'succeeded', out.error?.message);
        assert.ok(sameFloatBits(out.params, reference.params), 'the final weights differ from the undisturbed run');
        assert.deepEqual(out.steps.map((s) => s.losses), reference.steps.map((s) => s.losses));
        assert.ok(out.counters.skippedUnits <= tally.nonFinite);
        if (out.workers[1]!.session!.closedForErrors) {
          closed++;
          assert.equal(out.counters.sessionsClosedForErrors, 1);
          assert.ok(out.rejectedMessages > DEFAULT_SESSION_LIMITS.maxRejections);
          return;
        }
        assert.equal(out.counters.sessionsClosedForErrors, 0);
        assert.ok(out.rejectedMessages >= tally.certain, `${out.rejectedMessages} rejected, at least ${tally.certain} expected`);
        assert.ok(out.rejectedMessages <= tally.certain + tally.possible, `${out.rejectedMessages} rejected, at most ${tally.certain + tally.possible} expected`);
        assert.ok(out.counters.discardedResults >= tally.replays, 'every replayed result was read and dropped');
      }),
      fuzzParams(runs),
    );
    t.diagnostic(`${runs} runs, ${episodes} episodes, ${closed} sessions closed for errors, ${((performance.now() - started) / 1000).toFixed(1)} s`);
  });

  void it('training.nonFinite: skip-unit: a unit that is non-finite on every worker fails the run after MAX_INVALID_RESULTS tries', async () => {
    const nan: Interceptor = (unit, honest) => {
      if (unit.kind === 'UNIT_KIND_TRAIN' && unit.step === 1 && unit.task === 'task1' && unit.shard === 0) honest.payload![5] = Number.POSITIVE_INFINITY;
      return true;
    };
    const out = await skipUnit.run({ intercept: nan, interceptFirst: nan });
    assert.equal(out.status, 'failed');
    assert.ok(out.error instanceof NonFiniteError);
    assert.match(out.error.message, /^training diverged: unit s1\.task1\.0\.\d+ \(task task1, shard 0\): 3 invalid results, last: .*non-finite gradient \(Infinity\) at index 5.*\(training\.nonFinite: skip-unit\)$/);
    assert.equal(out.counters.skippedUnits, MAX_INVALID_RESULTS - 1, 'the last one fails the run instead');
    assert.equal(out.stepsDone, 1);
    assert.ok(sameFloatBits(out.params, reference.paramsAfter[1]!), 'nothing of step 2 was applied');
  });

  const failing = new InMemoryHarness(fuzzJob({ nonFinite: 'fail' }));

  void it('training.nonFinite: fail: a run either matches the undisturbed one or fails with NON_FINITE, its weights those of its last complete step', async (t) => {
    const runs = fuzzRuns(250);
    const clean = await failing.run();
    assert.equal(clean.status, 'succeeded');
    assert.ok(sameFloatBits(clean.params, reference.params), 'the policy does not change an undisturbed run');
    let failed = 0;
    await fc.assert(
      fc.asyncProperty(planArb, async ([plan, thenHonest]) => {
        const tally: Tally = { certain: 0, possible: 0, replays: 0, nonFinite: 0, episodes: 0 };
        const out = await failing.run({ intercept: planInterceptor(failing, plan, thenHonest, tally) });
        assert.deepEqual(out.workers.flatMap((w) => w.escaped), []);
        if (out.status === 'succeeded') {
          assert.ok(sameFloatBits(out.params, reference.params));
          return;
        }
        failed++;
        assert.ok(out.error instanceof NonFiniteError, `failed with ${out.error?.name}: ${out.error?.message}`);
        assert.match(out.error.message, /^training diverged: .*training\.nonFinite: fail/);
        assert.ok(tally.nonFinite > 0);
        assert.ok(sameFloatBits(out.params, reference.paramsAfter[out.stepsDone]!), `weights after ${out.stepsDone} steps differ`);
      }),
      fuzzParams(runs),
    );
    t.diagnostic(`${runs} runs, ${failed} failed with NON_FINITE`);
  });

  const skipStep = new InMemoryHarness(fuzzJob({ nonFinite: 'skip-step', steps: 6 }));

  void it('training.nonFinite: skip-step: a poisoned step applies no update, the run goes on, and repeats bitwise', async (t) => {
    const runs = fuzzRuns(150);
    const steps = skipStep.job.training.steps;
    const clean = await skipStep.run();
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.nat({ max: steps - 1 }), { maxLength: steps }), fc.nat(), async (poisonSteps, pick) => {
        const poison = (): Interceptor => {
          const done = new Set<number>();
          return (unit, honest) => {
            if (unit.kind !== 'UNIT_KIND_TRAIN' || !poisonSteps.includes(unit.step) || done.has(unit.step) || !honest.payload) return true;
            done.add(unit.step);
            honest.payload[pick % honest.payload.length] = Number.NaN;
            return true;
          };
        };
        const out = await skipStep.run({ intercept: poison() });
        assert.equal(out.status, 'succeeded', out.error?.message);
        assert.deepEqual(out.workers.flatMap((w) => w.escaped), []);
        // The fuzzed worker may not get a unit of every step: count the steps it could poison.
        const skipped = out.events.filter((e) => e.type === 'step-skipped').map((e) => (e.data as { step: number }).step - 1);
        assert.equal(out.counters.skippedSteps, skipped.length);
        assert.ok(skipped.every((s) => poisonSteps.includes(s)));
        for (const s of skipped) assert.ok(sameFloatBits(out.paramsAfter[s + 1]!, out.paramsAfter[s]!), `step ${s + 1} was skipped but changed the weights`);
        assert.equal(out.steps.length, steps - skipped.length);
        if (skipped.length === 0) assert.ok(sameFloatBits(out.params, clean.params));
        const again = await skipStep.run({ intercept: poison() });
        const skippedAgain = again.events.filter((e) => e.type === 'step-skipped').map((e) => (e.data as { step: number }).step - 1);
        if (skippedAgain.join() === skipped.join()) assert.ok(sameFloatBits(again.params, out.params), 'same skipped steps, other weights');
      }),
      fuzzParams(runs),
    );
    t.diagnostic(`${runs} runs`);
  });
});
