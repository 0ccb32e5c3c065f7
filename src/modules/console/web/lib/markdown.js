// Model answers are Markdown: rendered with marked, then sanitized with
// DOMPurify before they touch the page (a model can be made to emit HTML).
import { marked } from 'marked';
import DOMPurify from 'dompurify';

const escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

// Raw HTML in an answer is shown as text, never parsed: what a model writes as
// HTML is almost always an example or an injection. (DOMPurify would strip the
// handlers anyway, but Chromium reports them as CSP violations as it parses.)
marked.use({ gfm: true, breaks: false, renderer: { html: ({ text }) => escapeHtml(text) } });

/** Safe HTML for a Markdown text: no scripts, no event handlers, links open elsewhere. */
export function markdown(text) {
  const dirty = marked.parse(text ?? '', { async: false });
  return DOMPurify.sanitize(dirty, { USE_PROFILES: { html: true }, FORBID_TAGS: ['style', 'form', 'input'], ADD_ATTR: ['target'] });
}
