// WorkerSession's own limits, with a fake stream and a fake run: the payload of a rejected
// result is dropped quietly, too many rejections close the session, a connection that never
// says Hello is closed, oversized identifiers are rejected.
import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { UnitResult__Output } from '../../proto/generated/mtl/v1/UnitResult.js';
import { NonFiniteError, UnknownUnitError } from '../../common/errors.js';
import { silentLogger } from '../../common/logging.js';
import { PROTOCOL_VERSION } from '../../common/protocol.js';
import { MAX_NAME_CHARS, WorkerSession, type ResultSink, type SessionHandler, type SessionLimits } from '../../coordinator/worker-session.js';
import { FakeCall } from '../helpers/fake-call.js';

class FakeRun implements SessionHandler {
  rejected: string[] = [];
  completed: Array<{ unitId: string; payload: Float32Array | null; computeMs: number }> = [];
  /** Value ranges resultChunk saw, per unit. */
  chunks: Array<[string, number, number]> = [];
  /** resultChunk rejects a range that holds a value of 13 (a stand-in for a non-finite value). */
  poison = 13;
  closed: string[] = [];
  /** Unit ids the fake run accepts, with their payload size in floats. */
  constructor(private readonly units: Map<string, number>) {}
  onHello(): void {}
  beginResult(_s: WorkerSession, header: UnitResult__Output): ResultSink {
    const floats = this.units.get(header.unitId);
    if (floats === undefined || header.byteLength !== floats * 4) throw new UnknownUnitError(`unit ${header.unitId} is not outstanding`);
    return { payload: new Float32Array(floats), discard: false };
  }
  resultChunk(_s: WorkerSession, header: UnitResult__Output, sink: ResultSink, from: number, to: number): void {
    this.chunks.push([header.unitId, from, to]);
    if (sink.payload!.subarray(from, to).includes(this.poison)) throw new NonFiniteError(`poisoned value in [${from}, ${to})`);
  }
  completeResult(_s: WorkerSession, header: UnitResult__Output, sink: ResultSink): void {
    this.completed.push({ unitId: header.unitId, payload: sink.payload, computeMs: header.computeMs });
  }
  failed: string[] = [];
  onUnitFailed(_s: WorkerSession, f: { unitId: string }): void {
    this.failed.push(f.unitId);
  }
  onGoodbye(): void {}
  onRejected(_s: WorkerSession, error: Error): void {
    this.rejected.push(error.message);
  }
  onClosed(_s: WorkerSession, reason: string): void {
    this.closed.push(reason);
  }
}

function session(limits: Partial<SessionLimits> = {}, units = new Map([['u1', 8]])) {
  const call = new FakeCall();
  const run = new FakeRun(units);
  const s = new WorkerSession('w1', 'fake:1', call.asCall, run, silentLogger, { maxChunkBytes: 8, ...limits });
  const hello = () => call.deliver({ hello: { name: 'w', protocolVersion: PROTOCOL_VERSION, backend: 'cpu', device: 'cpu', capacity: 1 } });
  return { call, run, s, hello };
}

const header = (unitId: string, byteLength: number, transferId = 5) => ({ unitResult: { unitId, kind: 'UNIT_KIND_TRAIN' as const, byteLength, transferId, sampleCount: 1 } });
const chunk = (transferId: number, offset: number, n: number, fill = 1) => ({ chunk: { transferId, offset, data: Buffer.alloc(n, fill) } });
const end = (transferId: number, computeMs = 2) => ({ resultEnd: { transferId, computeMs, busyMs: computeMs } });

void describe('WorkerSession limits', () => {
  void it('drops the payload of a rejected result quietly: one bad result is one rejection', () => {
    const { call, run, s, hello } = session();
    hello();
    call.deliver(header('nope', 32));
    for (let off = 0; off < 32; off += 8) call.deliver(chunk(5, off, 8));
    assert.equal(run.rejected.length, 1, run.rejected.join('\n'));
    // A chunk that does not continue the dropped transfer is rejected as usual.
    call.deliver(chunk(5, 32, 8));
    assert.equal(run.rejected.length, 2);
    // The session still takes a valid result.
    call.deliver(header('u1', 32, 6));
    for (let off = 0; off < 32; off += 8) call.deliver(chunk(6, off, 8));
    assert.equal(run.completed.length, 0, 'complete only at its ResultEnd');
    call.deliver(end(6));
    assert.deepEqual(run.completed.map((c) => c.unitId), ['u1']);
    assert.equal(s.state, 'ready');
  });

  void it('takes a result in any order (buckets, last layers first), complete at its ResultEnd with the timings it carries', () => {
    const { call, run, hello } = session({}, new Map([['u1', 8]]));
    hello();
    call.deliver(header('u1', 32));
    const bytes = Buffer.from(Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]).buffer);
    for (const [offset, n] of [[24, 8], [16, 8], [0, 8], [8, 8]] as const) {
      call.deliver({ chunk: { transferId: 5, offset, data: bytes.subarray(offset, offset + n) } });
      call.deliver({ heartbeat: { sentAtMs: 1 } }); // heartbeats go on while a result streams
    }
    call.deliver(end(5, 42));
    assert.deepEqual(run.rejected, []);
    assert.deepEqual(run.chunks, [['u1', 6, 8], ['u1', 4, 6], ['u1', 0, 2], ['u1', 2, 4]]);
    assert.deepEqual([...run.completed[0]!.payload!], [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.equal(run.completed[0]!.computeMs, 42);
  });

  for (const [what, messages, error] of [
    ['an overlapping chunk', [chunk(5, 8, 8), chunk(5, 12, 8)], /chunk \[12, 20\) overlaps/],
    ['a duplicate chunk', [chunk(5, 8, 8), chunk(5, 8, 8)], /chunk \[8, 16\) overlaps/],
    ['a chunk off the value boundaries', [chunk(5, 2, 4)], /value boundaries/],
    ['a chunk of a length off the value boundaries', [chunk(5, 0, 6)], /value boundaries/],
    ['a chunk past the announced length', [chunk(5, 28, 8)], /outside the announced 32 bytes/],
    ['a ResultEnd before every byte', [chunk(5, 0, 8), end(5)], /after 8 of the announced 32 bytes/],
    ['a ResultEnd of another transfer', [chunk(5, 0, 8), end(6)], /result end of transfer 6 while transfer 5 is open/],
    ['a chunk the handler rejects (non-finite)', [chunk(5, 0, 8), chunk(5, 8, 8, 0)], /poisoned/],
  ] as const) {
    void it(`rejects ${what} once, and drops the rest of the transfer and its ResultEnd quietly`, () => {
      const { call, run, hello } = session();
      run.poison = 0;
      hello();
      call.deliver(header('u1', 32));
      for (const m of messages) call.deliver(m);
      assert.equal(run.rejected.length, 1, run.rejected.join('\n'));
      assert.match(run.rejected[0]!, error);
      // What the worker goes on sending of that transfer: dropped, heartbeats in between or not.
      call.deliver(chunk(5, 24, 8));
      call.deliver({ heartbeat: { sentAtMs: 1 } });
      call.deliver(chunk(5, 16, 8));
      call.deliver(end(5));
      assert.equal(run.rejected.length, 1, run.rejected.join('\n'));
      assert.equal(run.completed.length, 0);
      // A ResultEnd out of nowhere is rejected.
      call.deliver(end(5));
      assert.equal(run.rejected.length, 2);
    });
  }

  void it('ends an open transfer when its unit is reported failed (a computation that failed half sent)', () => {
    const { call, run, hello } = session();
    hello();
    call.deliver(header('u1', 32));
    call.deliver(chunk(5, 24, 8));
    call.deliver({ unitFailed: { unitId: 'u1', code: 'COMPUTE_ERROR', message: 'boom' } });
    assert.deepEqual(run.failed, ['u1']);
    call.deliver(header('u1', 32, 6));
    for (let off = 0; off < 32; off += 8) call.deliver(chunk(6, off, 8));
    call.deliver(end(6));
    assert.deepEqual(run.rejected, []);
    assert.deepEqual(run.completed.map((c) => c.unitId), ['u1']);
  });

  void it('drops the rest of a transfer after a bad chunk, without applying it', () => {
    const { call, run, hello } = session();
    hello();
    call.deliver(header('u1', 32));
    call.deliver(chunk(5, 0, 8));
    call.deliver(chunk(5, 16, 8)); // a gap is fine: chunks come in any order
    call.deliver(chunk(5, 4, 8)); // an overlap: rejected
    call.deliver(chunk(5, 24, 8)); // continues the broken stream: dropped, not counted again
    call.deliver(end(5));
    assert.equal(run.completed.length, 0);
    assert.deepEqual(run.rejected, ['chunk [4, 12) overlaps bytes already received']);
  });

  void it('closes the session after more than maxRejections rejected messages within the window, and says so', () => {
    const { call, run, s, hello } = session({ maxRejections: 5, rejectionWindowMs: 60_000 });
    hello();
    for (let i = 0; i < 5; i++) call.deliver(chunk(99, 0, 4));
    assert.equal(s.state, 'ready');
    call.deliver(chunk(99, 0, 4));
    assert.equal(s.state, 'closed');
    assert.ok(s.closedForErrors);
    assert.equal(call.status?.code, status.INVALID_ARGUMENT);
    assert.match(call.status?.details ?? '', /6 rejected messages within 60000 ms/);
    assert.equal(run.closed.length, 1);
    call.deliver(chunk(99, 0, 4));
    assert.equal(run.rejected.length, 6, 'nothing is looked at after the close');
  });

  void it('forgets rejections older than the window', async () => {
    const { call, s, hello } = session({ maxRejections: 2, rejectionWindowMs: 30 });
    hello();
    call.deliver(chunk(99, 0, 4));
    call.deliver(chunk(99, 0, 4));
    await sleep(50);
    call.deliver(chunk(99, 0, 4));
    call.deliver(chunk(99, 0, 4));
    assert.equal(s.state, 'ready');
    assert.equal(s.closedForErrors, false);
  });

  void it('closes a connection that does not say Hello in time', async () => {
    const { call, s } = session({ helloTimeoutMs: 20 });
    assert.equal(await Promise.race([s.done, sleep(2000).then(() => 'timeout')]), 'closed by coordinator: no Hello within 20 ms');
    assert.equal(call.status?.code, status.INVALID_ARGUMENT);
  });

  void it('rejects identifiers longer than the limit before the run sees them', () => {
    const { call, run, s } = session();
    call.deliver({ hello: { name: 'n'.repeat(MAX_NAME_CHARS + 1), protocolVersion: PROTOCOL_VERSION } });
    assert.equal(s.state, 'awaiting-hello');
    assert.match(run.rejected[0] ?? '', /worker name of 257 characters/);
    call.deliver({ hello: { name: 'ok', protocolVersion: PROTOCOL_VERSION } });
    assert.equal(s.state, 'ready');
    call.deliver(header('u'.repeat(10_000), 32));
    assert.match(run.rejected[1] ?? '', /unit id of 10000 characters/);
    call.deliver({ unitResult: { unitId: 'u1', metrics: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`m${i}`, 1])) } });
    assert.match(run.rejected[2] ?? '', /65 metrics/);
  });
});
