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
 * whole: `more()` appends the next page, `refresh()` reads the first again
 * over what is loaded; a change of `path` or `reload()` starts again from the first. `path` ending without a query gets `?cursor=`,
 * otherwise `&cursor=`.
 */
export function usePaged(path, deps = [path]) {
  const [state, setState] = useState({ items: undefined, cursor: null, error: undefined, busy: false });
  const [n, setN] = useState(0);
  const live = useRef(0);
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
          // An item refreshed onto the top may come again in a later page.
          const have = new Set((s.items ?? []).map((x) => x.id).filter(Boolean));
          return { items: [...(s.items ?? []), ...p.data.filter((x) => !have.has(x.id))], cursor: p.nextCursor ?? null, error: undefined, busy: false };
        }),
      (error) => run === live.current && setState((s) => ({ ...s, error, busy: false })),
    );
  }
  /**
   * Reads the first page again and puts it on top of what is loaded: new and
   * changed items show (a list newest first), and the pages loaded stay.
   */
  function refresh() {
    if (!path) return;
    const run = live.current;
    page(null).then(
      (p) =>
        run === live.current &&
        setState((s) => {
          if (!s.items) return { items: p.data, cursor: p.nextCursor ?? null, error: undefined, busy: false };
          const fresh = new Set(p.data.map((x) => x.id));
          return { ...s, items: [...p.data, ...s.items.filter((x) => !fresh.has(x.id))], error: undefined };
        }),
      (error) => run === live.current && setState((s) => ({ ...s, error })),
    );
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
