// A process of its own that reads the text of one PDF, Word or HTML file (extract.ts).
// Those readers run on untrusted bytes with no bound of their own: a PDF page
// that inflates to 200 MB held the event loop for 100 s, a 600 KB Word file
// took the heap past 4 GB and the process with it. A worker thread's heap
// limit is not enough: V8 ends some allocations past it (one large array
// grown by push) by aborting the whole process, worker or not. Here they can
// only abort this process, which holds nothing else, or run out its time.
import { convert as htmlToText } from 'html-to-text';

const DOCX = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';

async function extract(mimeType: string, bytes: Uint8Array): Promise<string> {
  if (mimeType === 'text/html') {
    return htmlToText(Buffer.from(bytes).toString('utf8'), { wordwrap: false, selectors: [{ selector: 'img', format: 'skip' }, { selector: 'a', options: { ignoreHref: true } }] });
  }
  if (mimeType === 'application/pdf') return (await (await import('unpdf')).extractText(bytes, { mergePages: true })).text;
  if (mimeType === DOCX) return (await (await import('mammoth')).default.extractRawText({ buffer: Buffer.from(bytes) })).value;
  throw new Error(`no reader for ${mimeType}`);
}

process.once('message', ({ mimeType, bytes }: { mimeType: string; bytes: Uint8Array }) => {
  extract(mimeType, bytes).then(
    (text) => ({ text }),
    (err: unknown) => ({ error: err instanceof Error ? err.message : String(err) }),
  ).then((answer) => process.send!(answer, () => process.disconnect()));
});
