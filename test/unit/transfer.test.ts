import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import fc from 'fast-check';
import { ByteLengthError, MessageTooLargeError, ProtocolViolationError } from '../../common/errors.js';
import { OrderedWriter, StreamClosedError, type WritableStreamLike } from '../../common/ordered-writer.js';
import { MAX_CHUNK_BYTES, PreEncodedMessage, chunkViews, coordinatorService, encodeCoordinatorMessage, float32Bytes } from '../../common/protocol.js';
import { firstNonFinite } from '../../common/finite.js';
import { CHUNK_COUNT_SLACK, TransferAssembler, maxChunksFor } from '../../common/transfer-assembler.js';

function patternBytes(n: number, salt = 0): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + salt * 7 + (i >> 8)) & 0xff);
}

void describe('TransferAssembler', () => {
  void it('reassembles the bytes from in-order chunks', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 700 }), (n, chunk) => {
        const source = patternBytes(n, chunk);
        const dest = new Uint8Array(n);
        const asm = new TransferAssembler(9, dest, chunk);
        const views = chunkViews(source, chunk);
        views.forEach((data, k) => {
          assert.equal(asm.complete, false);
          const done = asm.accept({ transferId: 9, offset: k * chunk, data });
          assert.equal(done, k === views.length - 1);
        });
        assert.equal(asm.receivedBytes, n);
        assert.ok(asm.complete);
        assert.deepEqual(dest, source);
      }),
      { numRuns: 100 },
    );
  });

  void it('uses the protocol chunk limit by default', () => {
    const dest = new Uint8Array(MAX_CHUNK_BYTES + 1);
    const asm = new TransferAssembler(1, dest);
    assert.equal(asm.accept({ transferId: 1, offset: 0, data: new Uint8Array(MAX_CHUNK_BYTES).fill(3) }), false);
    assert.throws(() => new TransferAssembler(2, dest).accept({ transferId: 2, offset: 0, data: new Uint8Array(MAX_CHUNK_BYTES + 1) }), MessageTooLargeError);
  });

  type Violation = [what: string, chunk: { transferId: number; offset: number; data: Uint8Array }, error: new (...args: never[]) => Error];
  // The assembler below has taken 16 of its 20 bytes (limit 8 per chunk); each chunk here breaks one rule.
  const junk = (n: number) => new Uint8Array(n).fill(0xee);
  const violations: Violation[] = [
    ['an offset past the expected one', { transferId: 5, offset: 18, data: junk(2) }, ProtocolViolationError],
    ['a repeated offset', { transferId: 5, offset: 8, data: junk(4) }, ProtocolViolationError],
    ['another transfer id', { transferId: 6, offset: 16, data: junk(4) }, ProtocolViolationError],
    ['a chunk over the limit', { transferId: 5, offset: 16, data: junk(9) }, MessageTooLargeError],
    ['an overrun of the announced length', { transferId: 5, offset: 16, data: junk(5) }, ByteLengthError],
    ['an empty chunk', { transferId: 5, offset: 16, data: junk(0) }, ProtocolViolationError],
  ];
  for (const [what, chunk, error] of violations) {
    void it(`rejects ${what} with ${error.name}, leaving the destination untouched`, () => {
      const dest = new Uint8Array(20);
      const asm = new TransferAssembler(5, dest, 8);
      asm.accept({ transferId: 5, offset: 0, data: patternBytes(8) });
      asm.accept({ transferId: 5, offset: 8, data: patternBytes(8, 1) });
      const before = dest.slice();
      assert.throws(() => asm.accept(chunk), error);
      assert.deepEqual(dest, before, 'destination untouched');
      assert.equal(asm.receivedBytes, 16);
      assert.equal(asm.complete, false);
      // The transfer can still finish with the right chunk.
      assert.equal(asm.accept({ transferId: 5, offset: 16, data: patternBytes(4, 2) }), true);
      assert.deepEqual(dest.subarray(16), patternBytes(4, 2));
    });
  }
});

void describe('TransferAssembler chunk budget', () => {
  void it(`accepts chunks down to 1/${CHUNK_COUNT_SLACK} of the limit and rejects a transfer that takes more chunks`, () => {
    const dest = new Uint8Array(100);
    const asm = new TransferAssembler(3, dest, 100);
    assert.equal(maxChunksFor(100, 100), CHUNK_COUNT_SLACK);
    for (let k = 0; k < CHUNK_COUNT_SLACK; k++) assert.equal(asm.accept({ transferId: 3, offset: k, data: Uint8Array.of(k) }), false);
    const before = dest.slice();
    assert.throws(() => asm.accept({ transferId: 3, offset: CHUNK_COUNT_SLACK, data: Uint8Array.of(1) }), MessageTooLargeError);
    assert.deepEqual(dest, before, 'destination untouched');
    assert.equal(asm.receivedBytes, CHUNK_COUNT_SLACK);
  });
});

void describe('firstNonFinite', () => {
  void it('finds NaN and ±Infinity', () => {
    assert.equal(firstNonFinite(Float32Array.from([1, 2, Number.NaN, Number.POSITIVE_INFINITY])), 2);
    assert.equal(firstNonFinite(Float32Array.from([Number.POSITIVE_INFINITY, 0])), 0);
    assert.equal(firstNonFinite(Float32Array.from([0, 0, 0, Number.NEGATIVE_INFINITY])), 3);
    // 1e39 overflows float32 to Infinity.
    assert.equal(firstNonFinite(Float32Array.from([1, 1e39])), 1);
  });

  void it('returns -1 for finite arrays, including extremes', () => {
    assert.equal(firstNonFinite(new Float32Array(0)), -1);
    assert.equal(firstNonFinite(Float32Array.from([-0, 0, 3.4028234663852886e38, -3.4028234663852886e38, 1.401298464324817e-45])), -1);
    fc.assert(
      fc.property(fc.array(fc.float({ noNaN: true, noDefaultInfinity: true })), (values) => {
        assert.equal(firstNonFinite(Float32Array.from(values)), -1);
      }),
    );
  });

  void it('finds the first bad value wherever it is', () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), { minLength: 1 }),
        fc.nat(),
        fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
        (values, at, bad) => {
          const a = Float32Array.from(values);
          const i = at % a.length;
          a[i] = bad;
          if (i + 1 < a.length) a[a.length - 1] = Number.NaN;
          assert.equal(firstNonFinite(a), i);
        },
      ),
    );
  });

  // The scan reads the values' bits eight at a time (a group test, then the group's elements):
  // every position of a group and of the tail, in views that start anywhere in their buffer,
  // and every NaN bit pattern (either sign, any payload) must still give the first index.
  void it('finds the first bad value in views at any offset, for every NaN bit pattern', () => {
    // Written as bits: a NaN stored through a Float32Array may lose its sign and payload.
    const bad = [0x7fc00000, 0xffc00000, 0x7f800001, 0xffffffff, 0x7f800000, 0xff800000];
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 1, max: 40 }), fc.nat(), fc.constantFrom(...bad), (offset, n, at, value) => {
        const backing = new Float32Array(offset + n + 9).fill(3.4028234663852886e38);
        backing.fill(Number.NaN, 0, offset);
        backing.fill(Number.NaN, offset + n);
        const view = backing.subarray(offset, offset + n);
        assert.equal(firstNonFinite(view), -1);
        const i = at % n;
        new Uint32Array(backing.buffer)[offset + i] = value;
        for (let k = i + 1; k < n; k += 3) view[k] = Number.POSITIVE_INFINITY;
        assert.equal(firstNonFinite(view), i);
      }),
    );
  });
});

void describe('chunkViews and float32Bytes', () => {
  void it('cuts views, not copies, of at most the chunk size, covering the input in order', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 50 }), fc.integer({ min: 1, max: 1000 }), (n, start, size) => {
        const backing = patternBytes(n + start + 3);
        const bytes = backing.subarray(start, start + n);
        const views = chunkViews(bytes, size);
        assert.equal(views.length, Math.ceil(n / size));
        let offset = 0;
        for (const v of views) {
          assert.equal(v.buffer, backing.buffer, 'shares the input buffer');
          assert.equal(v.byteOffset, bytes.byteOffset + offset);
          assert.ok(v.byteLength >= 1 && v.byteLength <= size);
          offset += v.byteLength;
        }
        assert.equal(offset, n);
        assert.deepEqual(new Uint8Array(Buffer.concat(views)), bytes);
      }),
    );
  });

  void it('reflects later changes to the input (no copy)', () => {
    const bytes = new Uint8Array(10);
    const views = chunkViews(bytes, 4);
    bytes[5] = 42;
    assert.equal(views[1]?.[1], 42);
  });

  void it('defaults to MAX_CHUNK_BYTES', () => {
    const views = chunkViews(new Uint8Array(MAX_CHUNK_BYTES * 2 + 1));
    assert.deepEqual(
      views.map((v) => v.byteLength),
      [MAX_CHUNK_BYTES, MAX_CHUNK_BYTES, 1],
    );
  });

  void it('float32Bytes is the little-endian view of the values', () => {
    const backing = Float32Array.from([9, 1, -2.5, 0.15625]);
    const values = backing.subarray(1);
    const bytes = float32Bytes(values);
    assert.equal(bytes.buffer, backing.buffer);
    assert.equal(bytes.byteOffset, 4);
    assert.equal(bytes.byteLength, 12);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    assert.deepEqual([dv.getFloat32(0, true), dv.getFloat32(4, true), dv.getFloat32(8, true)], [1, -2.5, 0.15625]);
  });
});

void describe('encodeCoordinatorMessage', () => {
  void it('encodes once to bytes the Connect deserializer reads back', () => {
    const data = float32Bytes(Float32Array.from([1.5, -2, Number.MIN_VALUE]));
    const encoded = encodeCoordinatorMessage({ chunk: { transferId: 7, offset: 4096, data } });
    assert.ok(encoded instanceof PreEncodedMessage);
    const decoded = coordinatorService().Connect.responseDeserialize(encoded.bytes);
    assert.equal(decoded.kind, 'chunk');
    assert.equal(decoded.chunk?.transferId, 7);
    assert.equal(decoded.chunk?.offset, 4096);
    assert.deepEqual(new Uint8Array(decoded.chunk?.data ?? []), new Uint8Array(data));

    const shutdown = coordinatorService().Connect.responseDeserialize(encodeCoordinatorMessage({ shutdown: { reason: 'done', failed: true } }).bytes);
    assert.equal(shutdown.kind, 'shutdown');
    assert.deepEqual({ reason: shutdown.shutdown?.reason, failed: shutdown.shutdown?.failed }, { reason: 'done', failed: true });
  });
});

/** A stand-in for a gRPC writable stream: records writes; `write` returns what the test sets. */
class FakeStream extends EventEmitter implements WritableStreamLike<string> {
  readonly written: string[] = [];
  /** What the next write returns (false = buffer full, wait for 'drain'). */
  accepting = true;
  /** When set, every n-th write fills the buffer. */
  fullEvery: number | undefined;
  /** Messages whose write throws (e.g. a serialisation failure). */
  readonly poison = new Set<string>();

  write(message: string): boolean {
    if (this.poison.has(message)) throw new TypeError(`cannot serialise ${message}`);
    this.written.push(message);
    if (this.fullEvery !== undefined) return this.written.length % this.fullEvery !== 0;
    return this.accepting;
  }
}

/** Settles a promise into a value the test can inspect without awaiting it. */
function track(p: Promise<void>): { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } {
  const t: { state: 'pending' | 'resolved' | 'rejected'; error?: unknown } = { state: 'pending' };
  p.then(
    () => {
      t.state = 'resolved';
    },
    (err: unknown) => {
      t.state = 'rejected';
      t.error = err;
    },
  );
  return t;
}

void describe('OrderedWriter', () => {
  void it('keeps the order of unawaited writes across backpressure', async () => {
    const stream = new FakeStream();
    stream.fullEvery = 7;
    const writer = new OrderedWriter(stream);
    const messages = Array.from({ length: 50 }, (_, i) => `m${i}`);
    const results = messages.map((m) => writer.write(m));
    let drains = 0;
    // Play the transport: whenever the writer is waiting, drain the buffer.
    while (stream.written.length < messages.length || writer.pending > 0) {
      await nextMacrotask();
      if (stream.listenerCount('drain') > 0) {
        drains++;
        stream.emit('drain');
      }
      assert.ok(drains <= messages.length, 'makes progress');
    }
    await Promise.all(results);
    assert.deepEqual(stream.written, messages);
    assert.equal(drains, Math.floor(messages.length / 7), 'waited once per full buffer');
    assert.equal(writer.pending, 0);
  });

  void it('waits for drain when write returns false', async () => {
    const stream = new FakeStream();
    const writer = new OrderedWriter(stream);
    stream.accepting = false;
    const a = track(writer.write('a'));
    const b = track(writer.write('b'));
    await nextMacrotask();
    assert.deepEqual(stream.written, ['a'], 'b waits until the stream drains');
    assert.equal(a.state, 'pending');
    assert.equal(b.state, 'pending');
    assert.equal(writer.pending, 2);
    stream.accepting = true;
    stream.emit('drain');
    await writer.flush();
    await nextMacrotask();
    assert.deepEqual(stream.written, ['a', 'b']);
    assert.equal(a.state, 'resolved');
    assert.equal(b.state, 'resolved');
    assert.equal(writer.pending, 0);
    assert.equal(stream.listenerCount('drain'), 0, 'no drain listener left behind');
    assert.equal(stream.listenerCount('close'), 1, 'only the writer’s own close listener remains');
  });

  void it('rejects the waiting and queued writes with StreamClosedError after close', async () => {
    const stream = new FakeStream();
    const writer = new OrderedWriter(stream);
    stream.accepting = false;
    const waiting = writer.write('a');
    const queued = [writer.write('b'), writer.write('c')];
    await nextMacrotask();
    stream.emit('close');
    await assert.rejects(waiting, StreamClosedError);
    for (const q of queued) await assert.rejects(q, StreamClosedError);
    assert.ok(writer.closed);
    await assert.rejects(writer.write('d'), StreamClosedError);
    assert.deepEqual(stream.written, ['a'], 'nothing is written after close');
    assert.equal(writer.pending, 0);
    await writer.flush();
  });

  void it('settles a write waiting for drain when the stream finishes (end() emits finish, not drain)', async () => {
    // A node Duplex whose writable side is ended while write() has returned false emits
    // 'finish' but neither 'drain' nor 'close' (the readable side is still open).
    const stream = new FakeStream();
    const writer = new OrderedWriter(stream);
    stream.accepting = false;
    const waiting = track(writer.write('a'));
    const queued = track(writer.write('b'));
    const flushed = track(writer.flush());
    await nextMacrotask();
    stream.emit('finish');
    for (let i = 0; i < 5; i++) await nextMacrotask();
    assert.ok(writer.closed, 'the writer counts finish as closed');
    assert.notEqual(waiting.state, 'pending', 'the write waiting for drain settles');
    if (waiting.state === 'rejected') assert.ok(waiting.error instanceof StreamClosedError);
    assert.equal(queued.state, 'rejected', 'the queued write is rejected');
    assert.ok(queued.error instanceof StreamClosedError);
    assert.notEqual(flushed.state, 'pending', 'flush() settles');
    assert.deepEqual(stream.written, ['a']);
  });

  void it('treats a stream error as closed', async () => {
    const stream = new FakeStream();
    const writer = new OrderedWriter(stream);
    stream.emit('error', new Error('reset'));
    assert.ok(writer.closed);
    await assert.rejects(writer.write('x'), StreamClosedError);
    assert.deepEqual(stream.written, []);
  });

  void it('a failed write does not block later ones', async () => {
    const stream = new FakeStream();
    const writer = new OrderedWriter(stream);
    stream.poison.add('bad');
    const first = writer.write('one');
    const bad = writer.write('bad');
    const last = writer.write('two');
    await first;
    await assert.rejects(bad, TypeError);
    await last;
    assert.deepEqual(stream.written, ['one', 'two']);
    assert.equal(writer.closed, false);
    await writer.flush();
  });
});
