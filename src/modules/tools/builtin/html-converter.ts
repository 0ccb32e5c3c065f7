import { createThreadPool, ThreadTimeout } from '../../../platform/thread-pool.ts';
import type { PageText } from './page-text.ts';
import type { PageHtml } from './page-text-worker.ts';

/** A conversion that gave no page: past its time (`timeout`: its thread was ended), or the converter failed. */
export class ConversionFailed extends Error {
  readonly reason: 'timeout' | 'failed';
  constructor(reason: 'timeout' | 'failed', message: string) {
    super(message);
    this.name = 'ConversionFailed';
    this.reason = reason;
  }
}

export interface HtmlConverter {
  /** The page's title and text (page-text.ts), converted on a thread within the time allowed; rejects with `signal`'s reason when it aborts first. */
  convert(html: string, base: string, signal: AbortSignal): Promise<PageText>;
  close(): Promise<void>;
}

/**
 * Turns fetched HTML into text on threads of their own. A page of megabytes of paragraphs takes the converter
 * seconds, and a hostile page can be made to take far longer: on the server's own thread every request would wait
 * for it. Here at most `threads` conversions run at once (the rest wait their turn, until their fetch's signal gives
 * up), each stopped after `timeoutMs`: its thread is ended and a new one takes its place. The clock starts when a
 * thread takes the page, not while it waits its turn (thread-pool.ts).
 */
export function createHtmlConverter(opts: { threads: number; timeoutMs: number }): HtmlConverter {
  const pool = createThreadPool<PageHtml, PageText>({ worker: new URL('./page-text-worker.ts', import.meta.url), threads: opts.threads, timeoutMs: opts.timeoutMs });
  return {
    async convert(html, base, signal) {
      try {
        return await pool.run({ html, base }, signal);
      } catch (err) {
        if (err instanceof ThreadTimeout) throw new ConversionFailed('timeout', `the page's HTML was not converted to text within ${opts.timeoutMs} ms`);
        if (signal.aborted) throw err;
        throw new ConversionFailed('failed', `the page's HTML could not be converted: ${(err as Error).message ?? String(err)}`);
      }
    },
    close: () => pool.close(),
  };
}
