// Model answers are Markdown: rendered with marked, then sanitized with
// DOMPurify before they touch the page (a model can be made to emit HTML).
import { marked } from 'marked';
import DOMPurify from 'dompurify';

const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

// Raw HTML in an answer is shown as text, never parsed: what a model writes as
// HTML is almost always an example or an injection. (DOMPurify would strip the
// handlers anyway, but Chromium reports them as CSP violations as it parses.)
marked.use({ gfm: true, breaks: false, renderer: { html: ({ text }) => escapeHtml(text) } });

/** A stored file's bytes (a variant, a signed link) or its thumbnail: what Parley serves to be shown as an image. */
const FILE_IMAGE = /^\/v1\/files\/[0-9a-f-]{36}\/(?:content|thumbnail)$/i;
/** Inline images of the raster types Parley takes as images: they make no request. */
const DATA_IMAGE = /^data:image\/(?:png|jpeg|gif|webp|avif)[;,]/i;

/** The URL an image may load from, resolved as the browser would; undefined for any other. */
function imageSource(src) {
  if (DATA_IMAGE.test(src)) return src;
  let url;
  try {
    url = new URL(src, location.href);
  } catch {
    return undefined;
  }
  return url.origin === location.origin && FILE_IMAGE.test(url.pathname) ? url.href : undefined;
}

// An image loads the moment the text renders, with the reader's cookies: any other
// same-origin URL is a GET the text's author makes as the reader (a shared document,
// a prompt-injected answer: `![](/v1/users/me/export)` built a zip of the account on
// every streamed chunk). Such an image keeps its alt text and loses its source, as a
// `javascript:` link keeps its text and loses its href. Its own instance: the hook
// stays off the page's other sanitizers.
const purify = DOMPurify(window);
purify.addHook('afterSanitizeAttributes', (node) => {
  // A link opens in a new tab: followed in this one, it would take the reader out of the console (a draft, a
  // streaming answer). No opener for the page it opens, and no Referer. A link within the page (`#…`) stays in it.
  if (node.nodeName === 'A' && node.hasAttribute('href') && !node.getAttribute('href').startsWith('#')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
    return;
  }
  if (node.nodeName !== 'IMG') return;
  const src = imageSource(node.getAttribute('src') ?? '');
  node.removeAttribute('srcset');
  if (src) node.setAttribute('src', src);
  else node.removeAttribute('src');
});

/** Safe HTML for a Markdown text: no scripts, no event handlers, links open elsewhere, images only of Parley's files. */
export function markdown(text) {
  const dirty = marked.parse(text ?? '', { async: false });
  return purify.sanitize(dirty, { USE_PROFILES: { html: true }, FORBID_TAGS: ['style', 'form', 'input'] });
}
