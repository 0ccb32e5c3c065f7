// Health: each dependency as `GET /ready` sees it (the database, blob storage,
// Redis when configured). A 503 still carries the checks, so it is shown, not
// treated as a broken page.
import { api } from '../../lib/api.js';
import { html } from '../../lib/html.js';
import { when } from '../../lib/format.js';
import { ErrorNote, useLoad } from '../../lib/ui.js';

async function readiness() {
  try {
    return { ...(await api('GET', '/ready')), at: new Date().toISOString() };
  } catch (err) {
    if (err.problem?.checks) return { ...err.problem, at: new Date().toISOString() };
    throw err;
  }
}

export function Health() {
  const [ready, error, reload] = useLoad(readiness);
  return html`<div class="admin-row"><button type="button" class="secondary" onClick=${reload}>Check again</button></div>
    <${ErrorNote} error=${error} />
    ${ready
      ? html`<p role="status">Overall: <strong class=${ready.status === 'ready' ? 'admin-ok' : 'admin-bad'}>${ready.status}</strong>
          <span class="muted"> (checked ${when(ready.at)})</span></p>
        <table class="admin-health">
          <thead><tr><th>Dependency</th><th>State</th></tr></thead>
          <tbody>${Object.entries(ready.checks).map(
            ([name, state]) => html`<tr key=${name}><td>${name}</td><td class=${state === 'ok' ? 'admin-ok' : 'admin-bad'}>${state === 'ok' ? 'OK' : 'down'}</td></tr>`,
          )}</tbody>
        </table>`
      : null}`;
}
