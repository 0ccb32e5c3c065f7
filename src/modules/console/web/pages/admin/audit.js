// The audit log, newest first: by user and by exact action.
import { useState } from 'preact/hooks';
import { html } from '../../lib/html.js';
import { when } from '../../lib/format.js';
import { Field } from '../../lib/ui.js';
import { formValues, Paged, ShortId, withQuery } from './common.js';

export function Audit({ route }) {
  const [filters, setFilters] = useState({ userId: route.query.get('userId') ?? '', action: route.query.get('action') ?? '' });
  return html`<form class="admin-filters" onSubmit=${(e) => (e.preventDefault(), setFilters(formValues(e)))}>
      <${Field} label="User id"><input name="userId" value=${filters.userId} /></${Field}>
      <${Field} label="Action"><input name="action" placeholder="e.g. ban.created" value=${filters.action} /></${Field}>
      <button type="submit">Filter</button>
    </form>
    <${Paged} path=${withQuery('/v1/admin/audit', filters)} label="Audit log">
      ${(entries) => html`<div class="admin-scroll"><table>
        <thead><tr><th>When</th><th>Action</th><th>User</th><th>By</th><th>IP</th><th>Details</th></tr></thead>
        <tbody>${entries.map(
          (a) => html`<tr key=${a.id}>
            <td>${when(a.createdAt)}</td><td><code>${a.action}</code></td>
            <td>${a.userId ? html`<a href=${`#/admin/users/${a.userId}`}><${ShortId} id=${a.userId} /></a>` : '—'}</td>
            <td>${a.actorId ? html`<${ShortId} id=${a.actorId} />` : html`<span class="muted">system</span>`}</td>
            <td>${a.ip ?? ''}</td>
            <td>${Object.keys(a.metadata).length ? html`<code class="admin-json">${JSON.stringify(a.metadata)}</code>` : ''}</td>
          </tr>`,
        )}</tbody>
      </table></div>`}
    </${Paged}>`;
}
