import type { Readable } from 'node:stream';

/** A stored object as the store describes it. */
export interface StoredObject {
  key: string;
  size: number;
  contentType?: string;
}

/** Bytes `start` to `end`, both included (as in an HTTP `Range`). */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Blobs by key: files, their variants and thumbnails. Local disk under the
 * data directory (one machine) or any S3-compatible service (many). Bodies
 * stream both ways: nothing here holds a whole file in memory. A write that
 * fails part-way (the body errors, the connection drops) leaves nothing at
 * its key. Keys are relative paths of `[A-Za-z0-9._-]` segments joined by `/`.
 */
export interface Storage {
  readonly kind: 'disk' | 's3';
  /** Streams `body` to `key`, replacing what was there; resolves with its size once it is all stored. */
  put(key: string, body: Readable, opts?: { contentType?: string }): Promise<{ size: number }>;
  /** The object's bytes (all, or one range), or undefined when there is none at `key`. */
  get(key: string, range?: ByteRange): Promise<Readable | undefined>;
  stat(key: string): Promise<StoredObject | undefined>;
  /** Removes the object; no error when it is not there. */
  delete(key: string): Promise<void>;
  /**
   * The keys under a folder (`prefix` ends with `/`), in no particular order: sweeps and checks, and folders known
   * to stay small (a file's variants, counted before one more is made); never a large folder on a request path.
   */
  keys(prefix: string): Promise<string[]>;
  /** Removes every object whose key starts with `prefix` (a folder: ends with `/`); returns how many. */
  deletePrefix(prefix: string): Promise<number>;
  /**
   * A URL that reads the object straight from the store until `expiresIn` seconds pass, answered with
   * the given type and disposition (S3 only: a disk has no URL of its own).
   */
  presignGet?(key: string, opts: { expiresIn: number; contentType?: string; disposition?: string }): Promise<string>;
  /** Throws when the store cannot be reached (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

const SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Throws unless `key` is a relative path of safe segments (no `..`, no empty or absolute parts). */
export function checkKey(key: string, opts: { prefix?: boolean } = {}): void {
  const segments = key.split('/');
  if (opts.prefix && segments.at(-1) === '') segments.pop();
  if (!key || key.length > 1024 || !segments.length || segments.some((s) => !SEGMENT.test(s) || s === '.' || s === '..')) {
    throw new Error(`invalid storage key "${key.slice(0, 100)}"`);
  }
}
