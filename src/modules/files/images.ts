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
/**
 * Variant requests that may wait for a turn in a process; one more is answered 503 `images_busy` at once.
 * At a second or so for the largest variant, the last in line waits about IMAGES_WAITING / IMAGES_AT_ONCE seconds:
 * longer, and its client has likely given up anyway. Thumbnails (queued jobs, a few at once) always wait.
 */
export const IMAGES_WAITING = 8 * IMAGES_AT_ONCE;
/** What a refused variant request is told to wait (seconds): about the time the queue takes to move on. */
const BUSY_RETRY_AFTER_SECONDS = 2;
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
/** Where a file's variants are kept, one object each. */
export const variantsFolder = (f: Pick<ImageSource, 'userId' | 'id'>) => `files/${f.userId}/${f.id}/variants/`;

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

const imagesBusy = () =>
  new AppError(503, 'images_busy', 'Service unavailable', 'Too many images are being made right now; try again shortly', {
    headers: { 'retry-after': String(BUSY_RETRY_AFTER_SECONDS) },
    extra: { retryAfter: BUSY_RETRY_AFTER_SECONDS },
  });

/** Nobody is left to answer (nginx's 499): the work was not done, and the response goes nowhere. */
const clientGone = () => new AppError(499, 'client_closed_request', 'Client closed request', 'The client went away before its image was made');

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
  /** Most variants kept per file (`FILES_MAX_VARIANTS`). */
  maxVariants: number;
}

/** A variant request's outcome: already stored, made and stored, or (past the file's FILES_MAX_VARIANTS) made and only handed back. */
export type VariantOutcome = { made: false } | { made: true; kept: true } | { made: true; kept: false; bytes: Buffer };

/** One variant being made for whoever asked for it meanwhile; it is called off only when all of them have left. */
interface Making {
  result: Promise<VariantOutcome>;
  interested: number;
  abort: AbortController;
}

/** A request waiting for its turn. */
interface Waiter {
  start(): void;
}

/**
 * Thumbnails and on-demand variants, made by sharp from the original read
 * whole from storage (sharp would gather a streamed input before decoding
 * anyway; read first, its size is known before the work is chosen), the
 * result streamed back into storage. So the compressed original (at most
 * FILES_MAX_BYTES) is in memory while one is made; the decoded pixels are
 * bounded by the pixel limit, the output's by MAX_TRANSFORM_PX. A variant
 * past the file's FILES_MAX_VARIANTS (counted in storage when one is to be
 * made) is held whole instead, compressed, to be served and dropped.
 * At most IMAGES_AT_ONCE are made at once; the others wait, holding nothing
 * yet, at most IMAGES_WAITING variant requests of them (one more is 503
 * `images_busy`); a request whose client leaves while it waits leaves the
 * line, and its variant is not made. Concurrent requests for one variant in
 * this process make it once (single flight); another instance may make it
 * again at worst, and writes the same bytes over it.
 */
export function createImages(d: ImagesDeps) {
  const inflight = new Map<string, Making>();
  const counts = { made: 0, thumbnails: 0, mostRunning: 0, notKept: 0, refused: 0, abandoned: 0 };
  let running = 0;
  const waiting: Waiter[] = [];

  /**
   * Runs `work` when fewer than IMAGES_AT_ONCE others are running, first come first served. `bounded`: refused
   * (503) rather than waiting behind IMAGES_WAITING others. `signal` aborted while it waits: it leaves the line,
   * rejected with a 499, and `work` never runs.
   */
  async function inTurn<T>(work: () => Promise<T>, opts: { bounded?: boolean; signal?: AbortSignal } = {}): Promise<T> {
    const { signal } = opts;
    if (signal?.aborted) {
      counts.abandoned++;
      throw clientGone();
    }
    // One that finishes hands its turn to the next in line: `running` stays as it is.
    if (running < IMAGES_AT_ONCE) running++;
    else {
      if (opts.bounded && waiting.length >= IMAGES_WAITING) {
        counts.refused++;
        throw imagesBusy();
      }
      await new Promise<void>((resolve, reject) => {
        const leave = () => {
          waiting.splice(waiting.indexOf(waiter), 1);
          counts.abandoned++;
          reject(clientGone());
        };
        const waiter: Waiter = {
          start() {
            signal?.removeEventListener('abort', leave);
            resolve();
          },
        };
        signal?.addEventListener('abort', leave, { once: true });
        waiting.push(waiter);
      });
    }
    counts.mostRunning = Math.max(counts.mostRunning, running);
    try {
      return await work();
    } finally {
      const next = waiting.shift();
      if (next) next.start();
      else running--;
    }
  }

  /**
   * Reads `source` from storage and decodes its header: the decoder and the image's size (orientation applied).
   * An image that cannot be decoded (or is over the pixel limit) rejects with a 422 AppError.
   */
  async function decode(source: ImageSource, onRead?: (bytes: number) => void): Promise<{ decoder: Sharp; size: { width: number; height: number } }> {
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
    return { decoder, size };
  }

  /**
   * Streams `image` into storage at `target`. A decoding failure rejects with a 422 AppError; a storage failure
   * with its own error (worth retrying). A failed write leaves nothing at `target`.
   */
  async function store(image: Sharp, target: string, contentType: string) {
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
  }

  /** How a variant is shaped from the decoded original. */
  function shapeVariant(image: Sharp, size: { width: number; height: number }, t: ImageTransform, format: OutputFormat): Sharp {
    const resize = variantResize(t, size);
    let shaped = resize ? image.resize(resize) : image;
    // JPEG has no alpha: transparent parts become white, not black.
    if (format === 'jpeg') shaped = shaped.flatten({ background: '#ffffff' });
    // AVIF at effort 2 of 9: sharp's default (4) took ten times as long for a 2048 px photo, for the same size.
    return shaped.toFormat(format, format === 'avif' ? { quality: 50, effort: 2 } : { quality: 80 });
  }

  /** Makes the variant at `key` in its turn: kept in storage while the file has fewer than FILES_MAX_VARIANTS, else handed back. */
  function makeVariant(file: ImageSource, key: string, t: ImageTransform, signal: AbortSignal): Promise<VariantOutcome> {
    const format = outputFormat(t, file.mimeType);
    return inTurn(
      async () => {
        counts.made++;
        // Counted now, in turn, so requests side by side in this process see each other's variants.
        const keep = (await d.storage.keys(variantsFolder(file))).length < d.maxVariants;
        const { decoder, size } = await decode(file);
        const image = shapeVariant(decoder, size, t, format);
        if (keep) {
          await store(image, key, `image/${format}`);
          return { made: true, kept: true };
        }
        counts.notKept++;
        const bytes = await image.toBuffer().catch((err: Error) => {
          throw imageError(err, d.maxPixels);
        });
        return { made: true, kept: false, bytes };
      },
      { bounded: true, signal },
    );
  }

  return {
    /** Makes (or remakes) a file's thumbnail: WebP, its longest side at most THUMBNAIL_PX, aspect kept, never enlarged. */
    async thumbnail(file: ImageSource, onRead?: (bytes: number) => void) {
      const made = await inTurn(async () => {
        const { decoder } = await decode(file, onRead);
        return store(decoder.resize(THUMBNAIL_PX, THUMBNAIL_PX, { fit: 'inside', withoutEnlargement: true }).webp({ quality: 80 }), thumbnailKey(file), 'image/webp');
      });
      counts.thumbnails++;
      return made;
    },

    /**
     * Makes the variant at `key` unless it is stored already. Concurrent calls for one key share one making, which
     * is called off (499) if every one of their `signal`s aborts while it waits for its turn; past IMAGES_WAITING
     * others waiting, 503 `images_busy`.
     */
    async variant(file: ImageSource, key: string, t: ImageTransform, signal?: AbortSignal): Promise<VariantOutcome> {
      let making = inflight.get(key);
      // One called off (everyone who asked has left) is no use to a newcomer: it starts its own.
      if (!making || making.abort.signal.aborted) {
        const abort = new AbortController();
        const result = (async (): Promise<VariantOutcome> => {
          if (await d.storage.stat(key)) return { made: false };
          return makeVariant(file, key, t, abort.signal);
        })().finally(() => inflight.get(key) === started && inflight.delete(key));
        const started: Making = { result, interested: 0, abort };
        making = started;
        inflight.set(key, making);
      }
      const joined = making;
      joined.interested++;
      // One that cannot leave (no signal) keeps it going, as does anyone still there.
      if (!signal) return joined.result;
      const leave = () => {
        if (--joined.interested === 0) joined.abort.abort();
      };
      if (signal.aborted) leave();
      else signal.addEventListener('abort', leave, { once: true });
      try {
        return await joined.result;
      } finally {
        signal.removeEventListener('abort', leave);
      }
    },

    /**
     * How many variants and thumbnails this process has made, how many variants were not kept, refused (busy) and
     * abandoned (their client gone), how many are being made and waiting, and the most made at once (tests, metrics).
     */
    stats: () => ({ ...counts, inflight: inflight.size, running, waiting: waiting.length }),
  };
}

export type Images = ReturnType<typeof createImages>;
