import { threadTask } from '../../src/platform/thread-pool.ts';

/** The thread file of thread-pool.test.ts: `spin` never returns (only ending its thread stops it), `fail` throws, else the word back. */
export default threadTask((task: { spin?: true; fail?: string; word?: string }) => {
  if (task.fail) throw new Error(task.fail);
  while (task.spin);
  return task.word;
});
