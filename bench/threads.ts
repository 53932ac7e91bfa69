// How a worker should hand weights to its compute thread: the round trip of one version of
// `--params` floats (default 10⁷) from this thread to a worker thread and back, three ways,
// side by side: transferring the ArrayBuffer (the worker's choice: the thread hands it back
// for the next version), a SharedArrayBuffer both sides see (only a small message crosses),
// and a structured-clone copy (what a plain postMessage does). Also the round trip of an empty
// message, the floor under all three.
import { Worker } from 'node:worker_threads';
import { option, type Bench } from './bench-types.js';

/** The thread: answers every message at once (a transferred array goes back the same way). */
const ECHO = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (m) => {
  if (m.kind === 'transfer') parentPort.postMessage({ kind: 'transfer', data: m.data }, [m.data.buffer]);
  else if (m.kind === 'shared') parentPort.postMessage({ kind: 'shared', first: m.view[0] });
  else parentPort.postMessage({ kind: m.kind, length: m.data ? m.data.length : 0 });
});
`;

function roundTrip(thread: Worker, message: unknown, transfer: ArrayBuffer[] = []): Promise<{ data?: Float32Array }> {
  return new Promise((resolve) => {
    thread.once('message', resolve);
    thread.postMessage(message, transfer);
  });
}

async function medianMsAsync(fn: () => Promise<void>, reps: number): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

export const threadsBench: Bench = {
  name: 'threads',
  description: 'weights to a worker thread and back: transfer vs SharedArrayBuffer vs copy (10⁷ floats)',
  async run(args, progress) {
    const params = Number(option(args, 'params') ?? 10_000_000);
    const reps = Number(option(args, 'reps') ?? 30);
    const thread = new Worker(ECHO, { eval: true });
    try {
      let owned: Float32Array = new Float32Array(params).fill(1);
      const shared = new Float32Array(new SharedArrayBuffer(params * 4)).fill(1);
      const empty = await medianMsAsync(async () => void (await roundTrip(thread, { kind: 'empty' })), reps);
      const transfer = await medianMsAsync(async () => {
        const back = await roundTrip(thread, { kind: 'transfer', data: owned }, [owned.buffer as ArrayBuffer]);
        owned = back.data!;
      }, reps);
      const sab = await medianMsAsync(async () => void (await roundTrip(thread, { kind: 'shared', view: shared })), reps);
      const copy = await medianMsAsync(async () => void (await roundTrip(thread, { kind: 'copy', data: owned })), Math.max(3, Math.floor(reps / 3)));
      progress(`threads: ${params} floats, median of ${reps} round trips`);
      const rows = [
        ['empty message', empty],
        ['transfer (there and back)', transfer],
        ['SharedArrayBuffer (message only)', sab],
        ['structured-clone copy', copy],
      ] as const;
      const text = [
        `threads: one version of ${params} floats (${((params * 4) / 2 ** 20).toFixed(0)} MiB) to a worker thread and back, median ms`,
        '',
        '| way | ms | ÷ transfer |',
        '|---|---|---|',
        ...rows.map(([name, ms]) => `| ${name} | ${ms.toFixed(3)} | ${(ms / transfer).toFixed(2)} |`),
      ].join('\n');
      return { text, json: { params, reps, ms: { empty, transfer, shared: sab, copy } } };
    } finally {
      await thread.terminate();
    }
  },
};
