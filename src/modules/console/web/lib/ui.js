// Small pieces every page uses.
import { useEffect, useState } from 'preact/hooks';
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
