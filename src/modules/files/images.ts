import { availableParallelism } from 'node:os';
import type { OutputInfo, ResizeOptions, Sharp } from 'sharp';
import { AppError } from '../../errors.ts';
import type { Storage } from '../../platform/storage/storage.ts';

/** What sharp decodes here (its prebuilt libvips reads AVIF but has no HEVC decoder, so HEIC stays a plain file). */
export const IMAGE_TYPES: ReadonlySet<string> = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif']);
/** A thumbnail's longest side. */
export const THUMBNAIL_PX = 256;
/** A variant's largest width and height, whatever was asked (none, one side, `outside`): bounds the output's pixels (and the work) whatever the original. */
export const MAX_TRANSFORM_PX = 2048;
/**
 * Image operations (variants, thumbnails) running at once in a process; the others wait their turn. Each holds
 * one of libuv's threadpool threads (4) while libvips works, and every signed-in request needs that pool too
 * (WebCrypto for its token, disk reads): four large variants at once held it, and every request, for 92 s.
 */
export const IMAGES_AT_ONCE = 2;
export const FITS = ['cover', 'contain', 'fill', 'inside', 'outside'] as const;
export const OUTPUT_FORMATS = ['webp', 'png', 'jpeg', 'avif'] as const;

export type Fit = (typeof FITS)[number];
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** An on-demand transform as asked for; at least one field set. */
export interface ImageTransform {
  width?: number;
  height?: number;
  fit?: Fit;
  format?: OutputFormat;
}

/** The pieces of a file an image operation reads. */
export interface ImageSource {
  id: string;
  userId: string;
  mimeType: string;
  storageKey: string;
}

type SharpFactory = typeof import('sharp').default;
let loaded: Promise<SharpFactory> | undefined;

/**
 * sharp and libvips (about 27 MB resident, 45 ms) load with the first image, not at start:
 * a worker, a CLI command or a server that never sees an image does without them.
 * Its cache is kept small and its threads few, so a burst of transforms does not swell the server.
 */
function loadSharp(): Promise<SharpFactory> {
  return (loaded ??= import('sharp').then(({ default: sharp }) => {
    sharp.cache({ memory: 32, files: 0, items: 64 });
    sharp.concurrency(Math.min(2, availableParallelism()));
    return sharp;
  }));
}

export const thumbnailKey = (f: Pick<ImageSource, 'userId' | 'id'>) => `files/${f.userId}/${f.id}/thumbnail.webp`;

/** The transform as query parameters in a fixed order: what a variant link carries and its signature covers. */
export function canonicalTransform(t: ImageTransform): string {
  return [t.width && `width=${t.width}`, t.height && `height=${t.height}`, t.fit && `fit=${t.fit}`, t.format && `format=${t.format}`].filter(Boolean).join('&');
}

/** The format a variant is written in: the one asked for, else the original's when it is an output format, else WebP. */
export function outputFormat(t: ImageTransform, mimeType: string): OutputFormat {
  const own = mimeType.replace(/^image\//, '') as OutputFormat;
  return t.format ?? (OUTPUT_FORMATS.includes(own) ? own : 'webp');
}

/** A variant's file name under `variants/`: everything that makes its bytes differ (`w200-hauto-cover.webp`). */
export function variantName(t: ImageTransform, mimeType: string): string {
  return `w${t.width ?? 'auto'}-h${t.height ?? 'auto'}-${t.fit ?? 'cover'}.${outputFormat(t, mimeType)}`;
}

/**
 * How a variant is resized, given the original's size (orientation applied): as asked, unless that would make
 * it wider or taller than MAX_TRANSFORM_PX; then the image fitted inside that square. Undefined: as it is.
 */
function variantResize(t: ImageTransform, original: { width: number; height: number }): ResizeOptions | undefined {
  const fit = t.fit ?? 'cover';
  // Both sides given: the box asked for, or (inside) within it; only `outside` goes past it.
  if (t.width && t.height && fit !== 'outside') return { width: t.width, height: t.height, fit };
  // Otherwise the aspect is kept, at the scale of the side asked for (the larger of the two for `outside`; none: 1).
  const scale = Math.max(t.width ? t.width / original.width : 0, t.height ? t.height / original.height : 0) || 1;
  if (Math.max(original.width, original.height) * scale > MAX_TRANSFORM_PX) return { width: MAX_TRANSFORM_PX, height: MAX_TRANSFORM_PX, fit: 'inside' };
  return t.width || t.height ? { width: t.width, height: t.height, fit } : undefined;
}

export const imageTooLarge = (width: number, height: number, limit: number) =>
  new AppError(422, 'image_too_large', 'Unprocessable content', `The image declares ${width}×${height} pixels; at most ${limit} are accepted`, { extra: { width, height, limit } });

/** What sharp's error means for the client: the image is the problem (a 422 that no retry fixes). */
function imageError(err: Error, limit: number): AppError {
  if (/pixel limit/i.test(err.message)) {
    return new AppError(422, 'image_too_large', 'Unprocessable content', `The image holds more than ${limit} pixels`, { extra: { limit } });
  }
  return new AppError(422, 'image_unreadable', 'Unprocessable content', `The image could not be decoded: ${err.message}`);
}

/** Width and height as an image's first bytes declare them (PNG, GIF, WebP, AVIF, and JPEG when its frame header is near the start); undefined when they do not say. */
export async function declaredSize(head: Buffer): Promise<{ width: number; height: number } | undefined> {
  try {
    const sharp = await loadSharp();
    const m = await sharp(head, { limitInputPixels: false }).metadata();
    return m.width && m.height ? { width: m.width, height: m.height } : undefined;
  } catch {
    return undefined;
  }
}

export interface ImagesDeps {
  storage: Storage;
  /** Most pixels decoded (`FILES_MAX_IMAGE_PIXELS`). */
  maxPixels: number;
}

/**
 * Thumbnails and on-demand variants, made by sharp from the original read
 * whole from storage (sharp would gather a streamed input before decoding
 * anyway; read first, its size is known before the work is chosen), the
 * result streamed back into storage. So the compressed original (at most
 * FILES_MAX_BYTES) is in memory while one is made; the decoded pixels are
 * bounded by the pixel limit, the output's by MAX_TRANSFORM_PX, and the
 * result is never held whole. At most IMAGES_AT_ONCE are made at once;
 * the others wait, holding nothing yet. Concurrent requests for one variant
 * in this process make it once (single flight); another instance may make
 * it again at worst, and writes the same bytes over it.
 */
export function createImages(d: ImagesDeps) {
  const inflight = new Map<string, Promise<boolean>>();
  const counts = { made: 0, thumbnails: 0, mostRunning: 0 };
  let running = 0;
  const waiting: Array<() => void> = [];

  /** Runs `work` when fewer than IMAGES_AT_ONCE others are running, first come first served. */
  async function inTurn<T>(work: () => Promise<T>): Promise<T> {
    // One that finishes hands its turn to the next in line: `running` stays as it is.
    if (running < IMAGES_AT_ONCE) running++;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    counts.mostRunning = Math.max(counts.mostRunning, running);
    try {
      return await work();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  }

  /**
   * Reads `source` from storage and streams it through `shape` (given its size, orientation
   * applied) into `target`. An image that cannot be decoded (or is over the pixel limit) rejects
   * with a 422 AppError; a storage failure rejects with its own error (worth retrying). A failed
   * write leaves nothing at `target`.
   */
  function render(source: ImageSource, target: string, shape: (image: Sharp, size: { width: number; height: number }) => Sharp, contentType: string, onRead?: (bytes: number) => void) {
    return inTurn(async () => {
      const sharp = await loadSharp();
      const original = await d.storage.get(source.storageKey);
      if (!original) throw new AppError(410, 'file_content_missing', 'Gone', 'The file is recorded but its bytes are not in storage');
      const chunks: Buffer[] = [];
      let read = 0;
      for await (const chunk of original as AsyncIterable<Buffer>) {
        chunks.push(chunk);
        read += chunk.length;
        onRead?.(read);
      }
      const decoder = sharp(Buffer.concat(chunks), { limitInputPixels: d.maxPixels, sequentialRead: true, autoOrient: true });
      const { autoOrient: size } = await decoder.metadata().catch((err: Error) => {
        throw imageError(err, d.maxPixels);
      });
      const image = shape(decoder, size);
      let info: OutputInfo | undefined;
      let decodeError: Error | undefined;
      image.once('info', (i: OutputInfo) => (info = i));
      image.once('error', (err: Error) => (decodeError ??= err));
      try {
        await d.storage.put(target, image, { contentType });
      } catch (err) {
        // libvips' errors are plain Errors; a storage failure (disk, S3) carries a code or S3 metadata and is worth a retry.
        if (decodeError && !('code' in decodeError) && !('$metadata' in decodeError)) throw imageError(decodeError, d.maxPixels);
        throw err;
      }
      return { width: info?.width ?? 0, height: info?.height ?? 0, size: info?.size ?? 0 };
    });
  }

  return {
    /** Makes (or remakes) a file's thumbnail: WebP, its longest side at most THUMBNAIL_PX, aspect kept, never enlarged. */
    async thumbnail(file: ImageSource, onRead?: (bytes: number) => void) {
      const made = await render(file, thumbnailKey(file), (image) => image.resize(THUMBNAIL_PX, THUMBNAIL_PX, { fit: 'inside', withoutEnlargement: true }).webp({ quality: 80 }), 'image/webp', onRead);
      counts.thumbnails++;
      return made;
    },

    /**
     * Makes the variant at `key` unless it is stored already; resolves with true when this
     * call made it. Concurrent calls for one key share one making.
     */
    variant(file: ImageSource, key: string, t: ImageTransform): Promise<boolean> {
      let making = inflight.get(key);
      if (!making) {
        const format = outputFormat(t, file.mimeType);
        making = (async () => {
          if (await d.storage.stat(key)) return false;
          counts.made++;
          await render(
            file,
            key,
            (image, size) => {
              const resize = variantResize(t, size);
              let shaped = resize ? image.resize(resize) : image;
              // JPEG has no alpha: transparent parts become white, not black.
              if (format === 'jpeg') shaped = shaped.flatten({ background: '#ffffff' });
              // AVIF at effort 2 of 9: sharp's default (4) took ten times as long for a 2048 px photo, for the same size.
              return shaped.toFormat(format, format === 'avif' ? { quality: 50, effort: 2 } : { quality: 80 });
            },
            `image/${format}`,
          );
          return true;
        })().finally(() => inflight.delete(key));
        inflight.set(key, making);
      }
      return making;
    },

    /** How many variants and thumbnails this process has made, how many are being made and waiting, and the most made at once (tests, metrics). */
    stats: () => ({ ...counts, inflight: inflight.size, running, waiting: waiting.length }),
  };
}

export type Images = ReturnType<typeof createImages>;
