// What every admin section shares: a paged table over a cursor list, a
// confirmation before anything destructive, query strings from filter forms.
import { useRef, useState } from 'preact/hooks';
import { api } from '../../lib/api.js';
import { html } from '../../lib/html.js';
import { ErrorNote, useLoad } from '../../lib/ui.js';

/** `path?a=1&b=2` from the filters that are set; empty ones are left out so the API sees no filter. */
export function withQuery(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}${path.includes('?') ? '&' : '?'}${s}` : path;
}

/** A filter form's fields as an object, for `withQuery`. */
export const formValues = (e) => Object.fromEntries(new FormData(e.currentTarget));

/**
 * One page of a `{data, nextCursor}` list at a time. The cursors already
 * followed are kept, so Previous goes back without the API knowing about it;
 * a new `path` (other filters) starts again at the first page.
 */
export function Paged({ path, label, children, reloadKey = 0 }) {
  // The cursors belong to the path they came from: other filters start again at once, never with a stale cursor.
  const [state, setState] = useState({ path, cursors: [undefined] });
  const cursors = state.path === path ? state.cursors : [undefined];
  const setCursors = (next) => setState({ path, cursors: next });
  const cursor = cursors.at(-1);
  const [page, error, reload] = useLoad(() => api('GET', withQuery(path, { cursor })), [path, cursor, reloadKey]);
  return html`<section aria-label=${label} aria-busy=${page === undefined && !error ? 'true' : undefined}>
    <${ErrorNote} error=${error} />
    ${page === undefined
      ? error
        ? null
        : html`<p class="muted">Loading…</p>`
      : page.data.length
        ? children(page.data, reload)
        : html`<p class="muted">Nothing here.</p>`}
    <nav class="admin-pager" aria-label=${`${label}: pages`}>
      <button type="button" class="secondary" disabled=${cursors.length < 2} onClick=${() => setCursors(cursors.slice(0, -1))}>Previous</button>
      <span class="muted">Page ${cursors.length}</span>
      <button type="button" class="secondary" disabled=${!page?.nextCursor} onClick=${() => setCursors([...cursors, page.nextCursor])}>Next</button>
    </nav>
  </section>`;
}

/**
 * A button that asks first: a modal dialog names what will happen, and only
 * its confirm button acts. `action` runs then; its error shows in the dialog.
 */
export function Confirm({ label, title, question, confirm, action, danger = true, className = 'secondary' }) {
  const ref = useRef(null);
  const [error, setError] = useState(undefined);
  const [busy, setBusy] = useState(false);
  const open = () => {
    setError(undefined);
    ref.current.showModal();
  };
  async function go() {
    setBusy(true);
    try {
      await action();
      ref.current?.close();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  return html`<button type="button" class=${className} aria-label=${title} onClick=${open}>${label}</button>
    <dialog ref=${ref} class="admin-confirm" aria-label=${title}>
      <p>${question}</p>
      <${ErrorNote} error=${error} />
      <div class="admin-row">
        <button type="button" class="secondary" onClick=${() => ref.current.close()}>Cancel</button>
        <button type="button" class=${danger ? 'danger' : ''} disabled=${busy} onClick=${go}>${confirm}</button>
      </div>
    </dialog>`;
}

/** A short id people can compare at a glance, the full one on hover and to screen readers. */
export const ShortId = ({ id }) => (id ? html`<code title=${id}>${id.slice(-8)}</code>` : html`<span class="muted">—</span>`);
