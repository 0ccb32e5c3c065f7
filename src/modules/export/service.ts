import { PassThrough, Readable } from 'node:stream';
import { ZipFile } from 'yazl';
import type { Logger } from '../../platform/observability/logger.ts';
import type { ExportArchive, ExportSource } from './source.ts';

export interface Exporter {
  /**
   * Gathers one user's data from every module and returns the archive as a
   * stream: a zip with `manifest.json` and one folder per module. The reads
   * happen here (a failure is an error before anything is sent), except the
   * entries a source makes `later` and files' bytes, read as the zip reaches
   * them (a failure then cuts the download short).
   */
  archive(userId: string): Promise<Readable>;
}

const jsonBytes = (value: unknown) => Buffer.from(`${JSON.stringify(value, null, 2)}\n`);

/** The archive's layout version, in its manifest: a reader checks it before reading the folders. */
export const EXPORT_FORMAT = 1;

export function createExporter(opts: { sources: () => ExportSource[]; logger: Logger }): Exporter {
  return {
    async archive(userId) {
      const zip = new ZipFile();
      const entries: string[] = [];
      const missing: string[] = [];
      const now = new Date();
      const sources = opts.sources();
      for (const source of sources) {
        const at = (path: string) => {
          const full = `${source.name}/${path}`;
          entries.push(full);
          return full;
        };
        const archive: ExportArchive = {
          json: (path, value) => zip.addBuffer(jsonBytes(value), at(path), { mtime: now }),
          later: (path, value, o) =>
            zip.addReadStreamLazy(at(path), { mtime: now }, (done) => {
              value().then(
                (v) => done(null, Readable.from([o?.text ? Buffer.from(v as string) : jsonBytes(v)])),
                (err: unknown) => done(err as Error, undefined as never),
              );
            }),
          text: (path, value) => zip.addBuffer(Buffer.from(value), at(path), { mtime: now }),
          file: (path, open, o) => {
            const full = at(path);
            zip.addReadStreamLazy(full, { mtime: o?.mtime ?? now }, (done) => {
              open().then(
                (stream) => {
                  if (!stream) {
                    opts.logger.warn({ userId, entry: full }, 'export: a file is gone from storage');
                    missing.push(full);
                  }
                  // yazl does not listen for a lazy stream's errors: a storage read failing half-way fails the archive.
                  stream?.on('error', (err) => zip.emit('error', err));
                  done(null, stream ?? Readable.from([]));
                },
                (err) => done(err, undefined as never),
              );
            });
          },
        };
        await source.write(userId, archive);
      }
      // Every entry: the folders' own, then this manifest and missing.json (the files found gone from storage).
      const manifest = { format: EXPORT_FORMAT, exportedAt: now.toISOString(), userId, folders: sources.map((s) => s.name), entries: [...entries, 'manifest.json', 'missing.json'] };
      zip.addBuffer(jsonBytes(manifest), 'manifest.json', { mtime: now });
      // Files that turn out to be gone are named at the end, once the archive has reached them all.
      zip.addReadStreamLazy('missing.json', { mtime: now }, (done) => done(null, Readable.from([jsonBytes({ missing })])));
      zip.end();
      const out = new PassThrough();
      // A failure once bytes are out can only cut the download short: the client sees an incomplete zip, never a wrong one.
      zip.on('error', (err) => {
        opts.logger.error({ err, userId }, 'export: the archive failed while streaming');
        out.destroy(err);
      });
      return zip.outputStream.pipe(out);
    },
  };
}
