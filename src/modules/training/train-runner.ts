/**
 * Runs a training on a thread of its own (thread.ts) and hands its events to the caller one at a
 * time, in order: the caller stores a point before the thread trains on. Aborting terminates the
 * thread at once (a tfjs step cannot be interrupted otherwise).
 */
import { startWorkerThread } from '../../compute/worker-thread.js';
import type { TrainEvent, TrainTask } from './train-loop.js';
import type { ThreadMessage } from './train-thread.js';

/** A training failure reported by the thread; `permanent` when training again cannot help. */
export class TrainingFailed extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
    stack?: string,
  ) {
    super(message);
    this.name = 'TrainingFailed';
    if (stack) this.stack = stack;
  }
}

/**
 * Trains `task` on a new thread; `onEvent` runs for each event in order (the next one waits for
 * it). Resolves when the training is done; rejects with TrainingFailed, with what `onEvent` threw,
 * or with the signal's reason when aborted. The thread is gone when this settles.
 */
export function runTraining(task: TrainTask, onEvent: (event: TrainEvent) => Promise<void>, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  const thread = startWorkerThread(import.meta.url, './train-thread.js');
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let chain = Promise.resolve();
    const finish = (error?: unknown) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      void thread.terminate().finally(() => (error === undefined ? resolve() : reject(error)));
    };
    const onAbort = () => finish(signal?.reason ?? new Error('training aborted'));
    signal?.addEventListener('abort', onAbort, { once: true });
    thread.on('message', (message: ThreadMessage) => {
      chain = chain.then(async () => {
        if (settled) return;
        if (message.type === 'done') return finish();
        if (message.type === 'error') return finish(new TrainingFailed(message.message, message.permanent, message.stack));
        await onEvent(message);
        if (message.type === 'point' && !settled) thread.postMessage({ ack: true });
      }).catch((error: unknown) => finish(error));
    });
    thread.on('error', (error) => finish(new TrainingFailed(`the training thread failed: ${error.message}`, false, error.stack)));
    thread.on('exit', (code) => finish(new TrainingFailed(`the training thread exited with code ${code}`, false)));
    // The series move to the thread (no copy) unless they are a view of a larger buffer.
    const whole = task.x.byteOffset === 0 && task.x.byteLength === task.x.buffer.byteLength;
    thread.postMessage({ task }, whole ? [task.x.buffer as ArrayBuffer] : []);
  });
}
