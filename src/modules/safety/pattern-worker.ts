import { parentPort } from 'node:worker_threads';
import { compilePattern } from './rules.ts';

/**
 * The patterns' thread (see pattern-matcher.ts): answers each `{id, text, patterns}` with the index of the
 * first pattern that matches the text (-1: none). The thread that waits for it can stop it at any moment.
 */
const port = parentPort!;
port.on('message', (task: { id: number; text: string; patterns: string[] }) => {
  port.postMessage({ id: task.id, index: task.patterns.findIndex((pattern) => compilePattern(pattern).test(task.text)) });
});
port.postMessage({ ready: true });
