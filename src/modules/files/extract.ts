import { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { AppError } from '../../errors.ts';
import type { Storage } from '../../platform/storage/storage.ts';
import type { FileRow } from './schema.ts';

/**
 * Most text kept of one file: far beyond any model's window (about 4
 * characters a token), so the cut that matters is the prompt's, made by the
 * caller with the note that goes with it.
 */
export const MAX_TEXT_CHARS = 2_000_000;
/** Bytes of a text file read for its text (UTF-8 takes at most 4 a character). */
const MAX_TEXT_BYTES = MAX_TEXT_CHARS * 4;

/**
 * Formats whose text is read out of them, in a worker thread (extract-worker.ts): PDF (unpdf), Word
 * (mammoth's raw text), and HTML (html-to-text: the page's text, never its markup or scripts; HTML is
 * stored only where FILES_ALLOWED_TYPES admits it).
 */
const EXTRACTED = new Set(['text/html', 'application/pdf', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document']);

const WORKER = new URL('./extract-worker.ts', import.meta.url);
/** A reader's heap: the text of a long book fits many times over; a bomb's inflated contents do not. */
const READER_HEAP_MB = 512;
/** How long a reader may take before it is ended. */
const READER_MS = 60_000;

/**
 * The text of a PDF, Word or HTML file, read in a worker thread of its own, bounded in heap and time: a
 * hostile file (a page that inflates to hundreds of MB) ends that thread, not the server, and never holds
 * its event loop. A thread per file: each file's text is read once (then kept, see `extracted`).
 */
function readInWorker(mimeType: string, bytes: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER, { workerData: { mimeType, bytes: new Uint8Array(bytes) }, resourceLimits: { maxOldGenerationSizeMb: READER_HEAP_MB }, stdout: true, stderr: true });
    const done = (settle: () => void) => {
      clearTimeout(timer);
      settle();
      void worker.terminate();
    };
    const timer = setTimeout(() => done(() => reject(new Error(`reading it took over ${READER_MS / 1000} s`))), READER_MS);
    worker.once('message', (m: { text?: string; error?: string }) => done(() => (m.error === undefined ? resolve(m.text ?? '') : reject(new Error(m.error)))));
    worker.once('error', (err: NodeJS.ErrnoException) =>
      done(() => reject(err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? new Error(`reading it needs more than ${READER_HEAP_MB} MB`) : err)),
    );
    // Ended without a word (killed from outside): the promise is settled by then in every other case.
    worker.once('exit', (code) => done(() => reject(new Error(`its reader stopped (${code})`))));
  });
}

/** Whether a file of this type has text a model can read: text files, JSON, PDFs, Word documents. */
export const hasText = (mimeType: string) => mimeType.startsWith('text/') || mimeType === 'application/json' || EXTRACTED.has(mimeType);

const unreadable = (detail: string) => new AppError(422, 'file_unreadable', 'Unprocessable content', detail);

/** Reads at most `limit` bytes of a stream; `whole` false when there was more. */
async function readUpTo(body: Readable, limit: number): Promise<{ bytes: Buffer; whole: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      return { bytes: Buffer.concat(chunks).subarray(0, limit), whole: false };
    }
  }
  return { bytes: Buffer.concat(chunks), whole: true };
}

/**
 * What a model can take of a file: the text of text files and PDFs (PDF text
 * extracted once with unpdf, then kept beside the original as `text.txt`,
 * which goes with the file when it is deleted), and the bytes of small files
 * (images sent inline).
 */
export function createExtraction(d: { storage: Storage }) {
  const textKey = (f: Pick<FileRow, 'userId' | 'id'>) => `files/${f.userId}/${f.id}/text.txt`;

  async function original(file: FileRow): Promise<Readable> {
    const body = await d.storage.get(file.storageKey);
    if (!body) throw new AppError(410, 'file_content_missing', 'Gone', 'The file is recorded but its bytes are not in storage');
    return body;
  }

  /** The text of a PDF or Word file: extracted once, then read back from `text.txt`. */
  async function extracted(file: FileRow): Promise<string> {
    const cached = await d.storage.get(textKey(file));
    if (cached) return (await readUpTo(cached, MAX_TEXT_BYTES)).bytes.toString('utf8');
    const { bytes } = await readUpTo(await original(file), Number.MAX_SAFE_INTEGER);
    let text: string;
    try {
      // An HTML page is its own text, give or take markup: read no more of it than a text file is (a PDF or Word file is read whole).
      text = await readInWorker(file.mimeType, file.mimeType === 'text/html' ? bytes.subarray(0, MAX_TEXT_BYTES) : bytes);
    } catch (err) {
      throw unreadable(`The text of ${file.name} could not be read: ${(err as Error).message}`);
    }
    text = text.replaceAll('\0', '').slice(0, MAX_TEXT_CHARS);
    await d.storage.put(textKey(file), Readable.from([Buffer.from(text, 'utf8')]), { contentType: 'text/plain; charset=utf-8' });
    return text;
  }

  return {
    /**
     * The file's text (at most MAX_TEXT_CHARS characters), or null for a type
     * without text (images, audio, office documents). 422 `file_unreadable`
     * when a PDF cannot be parsed.
     */
    async textOf(file: FileRow): Promise<string | null> {
      if (!hasText(file.mimeType)) return null;
      if (EXTRACTED.has(file.mimeType)) return extracted(file);
      const { bytes } = await readUpTo(await original(file), MAX_TEXT_BYTES);
      // A character cut at the end of the bytes read decodes as U+FFFD: harmless, and past any prompt's cut.
      return bytes.toString('utf8').replaceAll('\0', '').slice(0, MAX_TEXT_CHARS);
    },

    /** All the bytes of a file of at most `maxBytes` (an image sent inline); 413 `file_too_large` beyond. */
    async bytesOf(file: FileRow, maxBytes: number): Promise<Buffer> {
      if (file.size > maxBytes) throw new AppError(413, 'file_too_large', 'Payload too large', `${file.name} is over ${maxBytes} bytes`, { extra: { maxBytes } });
      return (await readUpTo(await original(file), maxBytes)).bytes;
    },
  };
}
