// Model answers are Markdown: rendered with marked, then sanitized with
// DOMPurify before they touch the page (a model can be made to emit HTML).
import { marked } from 'marked';
import DOMPurify from 'dompurify';

marked.use({ gfm: true, breaks: false });

/** Safe HTML for a Markdown text: no scripts, no event handlers, links open elsewhere. */
export function markdown(text) {
  const dirty = marked.parse(text ?? '', { async: false });
  return DOMPurify.sanitize(dirty, { USE_PROFILES: { html: true }, FORBID_TAGS: ['style', 'form', 'input'], ADD_ATTR: ['target'] });
}
