// Small pieces every page uses.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api.js';
import { html } from './html.js';

/** An error as a page shows it: the problem's detail, never a stack. */
export const ErrorNote = ({ error }) => (error ? html`<p class="error" role="alert">${error.message ?? String(error)}</p>` : null);

/**
 * Loads data for a page: `[data, error, reload]`. `load` runs again when
 * `deps` change or `reload()` is called.
 */
export function useLoad(load, deps = []) {
  const [state, setState] = useState({ data: undefined, error: undefined });
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (data) => live && setState({ data, error: undefined }),
      (error) => live && setState({ data: undefined, error }),
    );
    return () => {
      live = false;
    };
  }, [...deps, n]);
  return [state.data, state.error, () => setN((x) => x + 1)];
}

/** A labelled field: the label names the control for screen readers and clicks. */
export const Field = ({ label, children, hint }) => html`<label class="field"><span>${label}</span>${children}${hint ? html`<small>${hint}</small>` : null}</label>`;

/** A page's title and actions. */
export const Header = ({ title, children }) => html`<header class="page-header"><h1>${title}</h1><div class="actions">${children}</div></header>`;

/**
 * A cursor-paged list (`{data, nextCursor}`) read a page at a time and kept
 * whole: `more()` appends the next page, `refresh()` reads again as many as
 * are loaded; a change of `path` or `reload()` starts again from the first.
 * `path` ending without a query gets `?cursor=`, otherwise `&cursor=`.
 */
export function usePaged(path, deps = [path]) {
  const [state, setState] = useState({ items: undefined, cursor: null, error: undefined, busy: false });
  const [n, setN] = useState(0);
  const live = useRef(0);
  /** How many items are loaded, for a refresh started by a callback of an earlier render. */
  const loaded = useRef(0);
  loaded.current = state.items?.length ?? 0;
  const current = useRef(path);
  current.current = path;
  const page = (cursor) => api('GET', cursor ? `${path}${path.includes('?') ? '&' : '?'}cursor=${encodeURIComponent(cursor)}` : path);
  useEffect(() => {
    if (!path) return setState({ items: undefined, cursor: null, error: undefined, busy: false });
    const run = ++live.current;
    setState((s) => ({ ...s, busy: true }));
    page(null).then(
      (p) => run === live.current && setState({ items: p.data, cursor: p.nextCursor ?? null, error: undefined, busy: false }),
      (error) => run === live.current && setState({ items: undefined, cursor: null, error, busy: false }),
    );
  }, [...deps, n]);
  function more() {
    if (!state.cursor || state.busy) return;
    const run = live.current;
    setState((s) => ({ ...s, busy: true }));
    page(state.cursor).then(
      (p) =>
        run === live.current &&
        setState((s) => {
          // An item that moved up since (a conversation just answered) may come again in a later page.
          const have = new Set((s.items ?? []).map((x) => x.id).filter(Boolean));
          return { items: [...(s.items ?? []), ...p.data.filter((x) => !have.has(x.id))], cursor: p.nextCursor ?? null, error: undefined, busy: false };
        }),
      (error) => run === live.current && setState((s) => ({ ...s, error, busy: false })),
    );
  }
  /**
   * Reads the list again from its first page, as far as it was loaded: new,
   * changed, moved and removed items show as they are now, and the pages the
   * reader loaded stay loaded.
   */
  async function refresh() {
    // A refresh held by a callback from before the list changed lists (a filter) has nothing left to refresh.
    if (!path || path !== current.current) return;
    const run = ++live.current;
    const want = loaded.current;
    try {
      const items = [];
      let cursor = null;
      do {
        const p = await page(cursor);
        items.push(...p.data.filter((x) => !x.id || !items.some((y) => y.id === x.id)));
        cursor = p.nextCursor ?? null;
      } while (cursor && items.length < want);
      if (run === live.current) setState({ items, cursor, error: undefined, busy: false });
    } catch (error) {
      if (run === live.current) setState((s) => ({ ...s, error, busy: false }));
    }
  }
  return { ...state, more, refresh, reload: () => setN((x) => x + 1) };
}

/** A form's submit: busy while it runs, its error or a short confirmation shown under it. */
export function useAction() {
  const [state, setState] = useState({ busy: false, error: undefined, done: undefined });
  async function run(fn, done) {
    setState({ busy: true, error: undefined, done: undefined });
    try {
      await fn();
      setState({ busy: false, error: undefined, done });
    } catch (error) {
      setState({ busy: false, error, done: undefined });
    }
  }
  return [state, run];
}

export const Status = ({ state }) => html`<${ErrorNote} error=${state.error} />${state.done ? html`<p class="ok" role="status">${state.done}</p>` : null}`;
