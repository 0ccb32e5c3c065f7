import type { Readable } from 'node:stream';
import { clip } from '../../platform/text.ts';

/**
 * What a user's data export holds from one module: it adds its entries to the
 * archive under its own folder (`<name>/…`). JSON is written at once, or made
 * later (`later`); a file's bytes are opened only when the archive reaches
 * them, one at a time.
 */
export interface ExportSource {
  /** The folder its entries go under: `chat`, `files`. */
  name: string;
  write(userId: string, archive: ExportArchive): Promise<void>;
}

export interface ExportArchive {
  /** A JSON entry (pretty-printed, UTF-8) at `path`, relative to the source's folder. */
  json(path: string, value: unknown): void;
  /**
   * A JSON entry whose value is made when the archive reaches it, entries being reached in the order they
   * were added: what is too large to hold whole (every message of every conversation) is read a part at a
   * time while the zip streams. A failure then can only cut the download short. With `text`, the value
   * is a string written as it is (UTF-8), not as JSON.
   */
  later(path: string, value: () => Promise<unknown>, opts?: { text?: boolean }): void;
  /** A text entry (UTF-8) at `path`. */
  text(path: string, value: string): void;
  /** A blob at `path`, read from `open()` when the archive gets to it; `undefined` (gone from storage) leaves the entry empty and names it in `missing.json`. */
  file(path: string, open: () => Promise<Readable | undefined>, opts?: { mtime?: Date }): void;
}

/** A name safe as one path segment of an archive entry: no separators, no control characters, not empty. */
export function segment(name: string, fallback = 'file'): string {
  // Cut whole: half a surrogate pair would be U+FFFD in the zip and the half itself in the manifest's JSON.
  const clean = clip(name.replace(/[\u0000-\u001f\u007f/\\:]+/g, '_').replace(/^\.+/, '_'), 150).trim();
  return clean || fallback;
}

/**
 * For entries made `later`, in order: what `read` gives for the batch of `size` items that item `index`
 * falls in, read once per batch, and only the current batch kept.
 */
export function inBatches<T, R>(items: readonly T[], size: number, read: (batch: T[]) => Promise<R>): (index: number) => Promise<R> {
  let current: { start: number; value: Promise<R> } | undefined;
  return (index) => {
    const start = index - (index % size);
    if (current?.start !== start) current = { start, value: read(items.slice(start, start + size)) };
    return current.value;
  };
}
