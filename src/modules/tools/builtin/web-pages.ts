import http from 'node:http';
import type { BlockList } from 'node:net';
import https from 'node:https';
import { pipeline, type Readable } from 'node:stream';
import zlib from 'node:zlib';
import { AddressRefused, pinnedLookup, resolvePublicHost, type ResolvedAddress } from '../../../platform/net/public-address.ts';
import { ToolError } from '../tool.ts';
import { ConversionFailed, createHtmlConverter } from './html-converter.ts';

export interface WebPagesSettings {
  /** Bytes of a body read (after decompression); the rest is not read. */
  maxBytes: number;
  /** The whole fetch, redirects and the HTML's conversion to text included. */
  timeoutMs: number;
  /** One page's HTML to text, on a conversion thread: past it the thread is ended and the page not read. */
  convertTimeoutMs: number;
  /** Pages converted at once (each on a thread of its own); more wait their turn within their fetch's time. */
  maxConversions: number;
  /** Private, loopback and link-local addresses reachable too (a closed network; tests). */
  allowPrivate: boolean;
  /** Private ranges reachable even so (an intranet's), when not all are. */
  allowedRanges?: BlockList;
  /** The longest answer (as JSON) a page makes: the toolbox's result limit, so the page's text is cut, not its JSON. */
  maxTextChars: number;
}

/** A page as the model reads it. */
export interface Page {
  /** Where it was read from, after redirects. */
  url: string;
  status: number;
  contentType: string;
  title?: string;
  text: string;
  /** The body went beyond the size cap or the text beyond the result limit: what is here is the beginning. */
  truncated?: true;
}

const MAX_REDIRECTS = 5;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

const isHtml = (media: string) => media === 'text/html' || media === 'application/xhtml+xml';
const TEXTUAL = new Set(['application/json', 'application/xml', 'application/javascript', 'application/x-javascript', 'application/ecmascript', 'application/x-ndjson', 'application/yaml', 'application/x-yaml', 'application/toml', 'application/csv', 'application/rss+xml', 'application/atom+xml']);
const isTextual = (media: string) => media.startsWith('text/') || TEXTUAL.has(media) || media.endsWith('+json') || media.endsWith('+xml');

function charsetOf(contentType: string, head: Buffer, html: boolean): string {
  const declared = /charset\s*=\s*["']?([^;"'\s]+)/i.exec(contentType)?.[1] ?? (html ? /<meta[^>]+charset\s*=\s*["']?([\w-]+)/i.exec(head.toString('latin1'))?.[1] : undefined);
  try {
    return new TextDecoder(declared ?? 'utf-8').encoding;
  } catch {
    return 'utf-8';
  }
}

/**
 * Reads public web pages for the model: http(s) only; every hop's host
 * resolved and refused when any of its addresses is private (unless allowed:
 * all, or some ranges), and the connection made to that checked address (no
 * second lookup, so DNS rebinding cannot swap it); redirects followed by hand, each one checked, at
 * most five; the body read up to a size cap, decompressed as it is counted;
 * the whole fetch under one time cap. HTML is reduced to text on a thread
 * (html-converter.ts), other text types are given as they are, anything else
 * is refused.
 */
export function createWebPages(settings: WebPagesSettings) {
  const converter = createHtmlConverter({ threads: settings.maxConversions, timeoutMs: settings.convertTimeoutMs });

  /** One GET to the checked address; resolves when the answer's headers arrive. */
  function get(url: URL, target: ResolvedAddress, signal: AbortSignal): Promise<http.IncomingMessage> {
    const client = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = client.request(url, {
        method: 'GET',
        agent: false,
        lookup: pinnedLookup(target) as never,
        signal,
        headers: {
          'user-agent': 'Parley (fetch_url tool)',
          accept: 'text/html,application/xhtml+xml,text/plain;q=0.9,application/json;q=0.9,*/*;q=0.5',
          'accept-encoding': 'gzip, deflate, br',
        },
      });
      req.once('response', resolve);
      // Kept for the request's life: an abort while the body is read errors the request too, after the answer came.
      req.on('error', reject);
      req.end();
    });
  }

  /** The body decompressed, up to the size cap: the rest is left unread and the connection dropped. */
  async function body(res: http.IncomingMessage): Promise<{ bytes: Buffer; cut: boolean }> {
    const encoding = String(res.headers['content-encoding'] ?? '').trim().toLowerCase();
    const decoder = encoding === 'gzip' || encoding === 'x-gzip' ? zlib.createGunzip() : encoding === 'deflate' ? zlib.createInflate() : encoding === 'br' ? zlib.createBrotliDecompress() : undefined;
    const stream: Readable = decoder ? pipeline(res, decoder, () => {}) : res;
    const chunks: Buffer[] = [];
    let size = 0;
    let cut = false;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        if (size + chunk.length > settings.maxBytes) {
          chunks.push(chunk.subarray(0, settings.maxBytes - size));
          size = settings.maxBytes;
          cut = true;
          break;
        }
        chunks.push(chunk);
        size += chunk.length;
      }
    } finally {
      res.destroy();
      decoder?.destroy();
    }
    return { bytes: Buffer.concat(chunks, size), cut };
  }

  /** Checks a URL the model gave or a page redirected to: absolute http(s), no credentials. */
  function checked(raw: string, base?: URL): URL {
    let url: URL;
    try {
      url = new URL(raw, base);
    } catch {
      throw new ToolError(`"${raw.slice(0, 200)}" is not a valid absolute URL`, 'url_invalid');
    }
    const what = base ? `The page redirected to ${url.href.slice(0, 200)}, which` : 'The URL';
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ToolError(`${what} does not use http or https; only web pages can be fetched`, 'url_scheme');
    if (url.username || url.password) throw new ToolError(`${what} carries a user name or password; they are not sent`, 'url_credentials');
    return url;
  }

  async function target(url: URL): Promise<ResolvedAddress> {
    try {
      return await resolvePublicHost(url, settings.allowPrivate, settings.allowedRanges);
    } catch (err) {
      if (!(err instanceof AddressRefused)) throw err;
      if (err.reason === 'private') throw new ToolError(`${url.host} is a private, loopback or link-local address; only public pages can be fetched`, 'url_private');
      throw new ToolError(err.temporary ? `The host ${err.host} could not be resolved now (${err.failure}); it may work later` : `The host ${err.host} does not resolve`, 'url_unresolvable');
    }
  }

  /** The page's text as the model reads it, cut so that the whole answer fits the result limit. */
  function fitted(page: Page): Page {
    const note = '\n[text cut: the page is longer]';
    let keep = page.text.length;
    let fit = page;
    // JSON escapes make each cut a guess: cut by what is still over until it fits.
    for (let over = JSON.stringify(fit).length - settings.maxTextChars; over > 0 && keep > 0; over = JSON.stringify(fit).length - settings.maxTextChars) {
      keep = Math.max(0, keep - over - note.length);
      fit = { ...page, text: page.text.slice(0, keep) + note, truncated: true };
    }
    return fit;
  }

  async function read(raw: string, signal: AbortSignal): Promise<Page> {
    const deadline = AbortSignal.timeout(settings.timeoutMs);
    const both = AbortSignal.any([signal, deadline]);
    let url = checked(raw);
    try {
      for (let hop = 0; ; hop++) {
        const res = await get(url, await target(url), both);
        const location = res.headers.location;
        if (REDIRECTS.has(res.statusCode ?? 0) && location) {
          res.destroy();
          if (hop === MAX_REDIRECTS) throw new ToolError(`The page redirected more than ${MAX_REDIRECTS} times`, 'too_many_redirects');
          url = checked(location, url);
          continue;
        }
        const contentType = String(res.headers['content-type'] ?? '');
        const media = contentType.split(';')[0]!.trim().toLowerCase();
        if (media && !isHtml(media) && !isTextual(media)) {
          res.destroy();
          throw new ToolError(`The page is ${media}, which fetch_url cannot read as text (it reads HTML, text and JSON)`, 'unsupported_content_type');
        }
        const { bytes, cut } = await body(res);
        // No type said: text if it looks like text.
        if (!media && bytes.subarray(0, 1024).includes(0)) throw new ToolError('The page has no content type and is not text', 'unsupported_content_type');
        const decoded = new TextDecoder(charsetOf(contentType, bytes.subarray(0, 2048), isHtml(media))).decode(bytes);
        const page: Page = { url: url.href, status: res.statusCode ?? 0, contentType: media || 'text/plain', text: decoded };
        if (isHtml(media)) {
          const { title, text } = await converter.convert(decoded, url.href, both);
          if (title) page.title = title;
          page.text = text;
        }
        if (cut) {
          page.text += `\n[body cut: only the first ${settings.maxBytes} bytes were read]`;
          page.truncated = true;
        }
        return fitted(page);
      }
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      if (deadline.aborted) throw new ToolError(`The page did not load within ${settings.timeoutMs} ms`, 'fetch_timeout');
      if (err instanceof ToolError) throw err;
      if (err instanceof ConversionFailed && err.reason === 'timeout') {
        throw new ToolError(`The page's HTML took more than ${settings.convertTimeoutMs} ms to convert to text; it was not read`, 'convert_timeout');
      }
      const code = (err as { code?: string }).code;
      throw new ToolError(`The page could not be fetched: ${code ?? (err as Error).message}`, 'fetch_failed');
    }
  }

  return {
    /** Reads a public page (see above); throws ToolError with why it cannot. */
    read,
    settings,
    /** Ends the conversion threads (a page being converted fails). */
    close: () => converter.close(),
  };
}

export type WebPages = ReturnType<typeof createWebPages>;
