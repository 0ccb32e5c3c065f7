import { parentPort } from 'node:worker_threads';
import { pageText } from './page-text.ts';

/**
 * A conversion thread (see html-converter.ts): answers each `{id, html, base}` with the page's title and text, or
 * the error the converter threw. The thread that waits for it can stop it at any moment.
 */
const port = parentPort!;
port.on('message', (task: { id: number; html: string; base: string }) => {
  try {
    port.postMessage({ id: task.id, page: pageText(task.html, task.base) });
  } catch (err) {
    port.postMessage({ id: task.id, error: (err as Error).message ?? String(err) });
  }
});
port.postMessage({ ready: true });
