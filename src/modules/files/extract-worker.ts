// A worker thread that reads the text of one PDF, Word or HTML file (extract.ts).
// Those readers run on untrusted bytes with no bound of their own: a PDF page
// that inflates to 200 MB held the event loop for 100 s, a 600 KB Word file
// took the heap past 4 GB and the process with it. Here they can only fill
// this thread's heap (it is ended, the server goes on) or run out its time.
import { parentPort, workerData } from 'node:worker_threads';
import { convert as htmlToText } from 'html-to-text';

const DOCX = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';

const { mimeType, bytes } = workerData as { mimeType: string; bytes: Uint8Array };

async function extract(): Promise<string> {
  if (mimeType === 'text/html') {
    return htmlToText(Buffer.from(bytes).toString('utf8'), { wordwrap: false, selectors: [{ selector: 'img', format: 'skip' }, { selector: 'a', options: { ignoreHref: true } }] });
  }
  if (mimeType === 'application/pdf') return (await (await import('unpdf')).extractText(bytes, { mergePages: true })).text;
  if (mimeType === DOCX) return (await (await import('mammoth')).default.extractRawText({ buffer: Buffer.from(bytes) })).value;
  throw new Error(`no reader for ${mimeType}`);
}

extract().then(
  (text) => parentPort!.postMessage({ text }),
  (err: unknown) => parentPort!.postMessage({ error: err instanceof Error ? err.message : String(err) }),
);
