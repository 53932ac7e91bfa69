// WorkerSession's own limits, with a fake stream and a fake run: the payload of a rejected
// result is dropped quietly, too many rejections close the session, a connection that never
// says Hello is closed, oversized identifiers are rejected.
import { status } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { UnitResult__Output } from '../../proto/generated/mtl/v1/UnitResult.js';
import { UnknownUnitError } from '../../common/errors.js';
import { silentLogger } from '../../common/logging.js';
import { PROTOCOL_VERSION } from '../../common/protocol.js';
import { MAX_NAME_CHARS, WorkerSession, type ResultSink, type SessionHandler, type SessionLimits } from '../../coordinator/worker-session.js';
import { FakeCall } from '../helpers/fake-call.js';

class FakeRun implements SessionHandler {
  rejected: string[] = [];
  completed: Array<{ unitId: string; payload: Float32Array | null }> = [];
  closed: string[] = [];
  /** Unit ids the fake run accepts, with their payload size in floats. */
  constructor(private readonly units: Map<string, number>) {}
  onHello(): void {}
  beginResult(_s: WorkerSession, header: UnitResult__Output): ResultSink {
    const floats = this.units.get(header.unitId);
    if (floats === undefined || header.byteLength !== floats * 4) throw new UnknownUnitError(`unit ${header.unitId} is not outstanding`);
    return { payload: new Float32Array(floats), discard: false };
  }
  completeResult(_s: WorkerSession, header: UnitResult__Output, sink: ResultSink): void {
    this.completed.push({ unitId: header.unitId, payload: sink.payload });
  }
  onUnitFailed(): void {}
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
const chunk = (transferId: number, offset: number, n: number) => ({ chunk: { transferId, offset, data: Buffer.alloc(n, 1) } });

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
    assert.deepEqual(run.completed.map((c) => c.unitId), ['u1']);
    assert.equal(s.state, 'ready');
  });

  void it('drops the rest of a transfer after a bad chunk, without applying it', () => {
    const { call, run, hello } = session();
    hello();
    call.deliver(header('u1', 32));
    call.deliver(chunk(5, 0, 8));
    call.deliver(chunk(5, 16, 8)); // a gap: rejected
    call.deliver(chunk(5, 24, 8)); // continues the broken stream: dropped, not counted again
    assert.equal(run.completed.length, 0);
    assert.deepEqual(run.rejected, ['out-of-order chunk: offset 16, expected 8']);
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
