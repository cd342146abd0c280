/**
 * The thread a training runs on (started by runner.ts only): the loop's tensor work, and its
 * seeded `Math.random`, stay off the event loop that serves requests and writes to the database.
 * Protocol: one `{ task }` message in; each loop event out; after a `point` the thread waits for
 * `{ ack: true }` (so weights and metrics are stored before training goes on, and a slow database
 * bounds memory); then `{ type: 'done' }` or `{ type: 'error' }`.
 */
import { parentPort } from 'node:worker_threads';
import { trainLoop, type TrainEvent, type TrainTask } from './train-loop.js';

export type ThreadMessage = TrainEvent | { type: 'done' } | { type: 'error'; message: string; stack?: string; permanent: boolean };

const port = parentPort;
if (port === null) throw new Error('thread.ts runs only as the worker thread of a training (runner.ts)');

function transferables(event: TrainEvent): ArrayBuffer[] {
  if (event.type !== 'point') return [];
  return [event.weightData, event.rows.buffer as ArrayBuffer, ...Object.values(event.terms).map((a) => (a as ArrayBufferView).buffer as ArrayBuffer)];
}

const acks: Array<() => void> = [];
port.on('message', (message: { task?: TrainTask; ack?: boolean }) => {
  if (message.ack) acks.shift()?.();
  else if (message.task) void train(message.task);
});

async function train(task: TrainTask): Promise<void> {
  try {
    for await (const event of trainLoop(task)) {
      const acked = event.type === 'point' ? new Promise<void>((resolve) => acks.push(resolve)) : null;
      port!.postMessage(event satisfies ThreadMessage, transferables(event));
      await acked;
    }
    port!.postMessage({ type: 'done' } satisfies ThreadMessage);
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    port!.postMessage({ type: 'error', message: e.message, stack: e.stack, permanent: (e as { permanent?: boolean }).permanent === true } satisfies ThreadMessage);
  }
}
