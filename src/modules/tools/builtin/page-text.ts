import { compile } from 'html-to-text';

/** What a page's HTML reads as: its title (when it has one) and its text. */
export interface PageText {
  title?: string;
  text: string;
}

const TITLE_CHARS = 300;

/** A link as the model can follow it: absolute http(s); scripts, data and in-page anchors dropped (their text stays). */
function linkTarget(href: string, base: string): string {
  try {
    const url = new URL(href, base);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : '';
  } catch {
    return '';
  }
}

/** HTML to readable text: no wrapping, links kept as absolute `[url]` after their text, tables in columns, nothing that is not text (scripts, styles, images, forms' inner parts). */
const htmlToText: (html: string, meta: { base: string }) => string = compile({
  wordwrap: false,
  selectors: [
    { selector: 'a', options: { hideLinkHrefIfSameAsText: true, pathRewrite: (href: string, meta: { base: string }) => linkTarget(href, meta.base) } },
    // The converter strips `mailto:` before the rewrite sees it, which would make the address a relative link.
    { selector: 'a[href^="mailto:"]', format: 'anchor', options: { ignoreHref: true } },
    { selector: 'table', format: 'dataTable' },
    ...['img', 'script', 'style', 'noscript', 'template', 'svg', 'canvas', 'iframe', 'object', 'select', 'button'].map((selector) => ({ selector, format: 'skip' })),
  ],
}) as never; // its typings leave out the metadata the compiled function passes to pathRewrite
const entitiesDecoded = compile({ wordwrap: false });

/**
 * The inner HTML of the page's first `<title>`, found in one pass: a pattern such as
 * `<title[^>]*>([\s\S]*?)<\/title>` scans to the end from every `<title` it meets, and a
 * page of two megabytes of `<title>` holds the event loop for over a minute.
 */
function titleOf(html: string): string | undefined {
  const open = html.search(/<title[\s>]/i);
  if (open < 0) return undefined;
  const start = html.indexOf('>', open) + 1;
  const end = html.slice(start).search(/<\/title[\s>]/i);
  return end < 0 ? undefined : html.slice(start, start + end);
}

/** A page's title and text, its links made absolute against `base`. Seconds of work for megabytes of HTML: run on a thread of its own (html-converter.ts). */
export function pageText(html: string, base: string): PageText {
  const title = titleOf(html);
  const titleText = title && entitiesDecoded(title).replace(/\s+/g, ' ').trim().slice(0, TITLE_CHARS);
  const text = htmlToText(html, { base }).trim();
  return titleText ? { title: titleText, text } : { text };
}
