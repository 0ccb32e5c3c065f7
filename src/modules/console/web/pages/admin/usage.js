// Usage by user over a range of UTC days, and the same range as the API's CSV
// (one row per day, user, key, project and model) to download.
import { useState } from 'preact/hooks';
import { api } from '../../lib/api.js';
import { count, money } from '../../lib/format.js';
import { html } from '../../lib/html.js';
import { ErrorNote, Field, useLoad } from '../../lib/ui.js';
import { formValues, ShortId, withQuery } from './common.js';

export function Usage({ route }) {
  const [filters, setFilters] = useState({ userId: route.query.get('userId') ?? '' });
  const [report, error] = useLoad(() => api('GET', withQuery('/v1/admin/usage', { ...filters, groupBy: 'user' })), [JSON.stringify(filters)]);
  const { model, ...range } = filters;
  return html`<form class="admin-filters" onSubmit=${(e) => (e.preventDefault(), setFilters(formValues(e)))}>
      <${Field} label="From"><input name="from" type="date" value=${filters.from} /></${Field}>
      <${Field} label="To"><input name="to" type="date" value=${filters.to} /></${Field}>
      <${Field} label="User id"><input name="userId" value=${filters.userId} /></${Field}>
      <${Field} label="Model"><input name="model" placeholder="provider:model" value=${filters.model} /></${Field}>
      <button type="submit">Show</button>
    </form>
    <p><a class="button" href=${withQuery('/v1/admin/usage/export', { from: range.from, to: range.to, userId: range.userId })} download>Export CSV</a>
      <span class="muted"> — every day, user, key, project and model of the range${model ? ' (all models)' : ''}.</span></p>
    <${ErrorNote} error=${error} />
    ${report
      ? html`<p class="muted">${report.from} to ${report.to}: ${count(report.totals.requests)} calls, ${money(report.totals.cost)}</p>
        ${report.data.length
          ? html`<div class="admin-scroll"><table>
              <thead><tr><th>User</th><th>Calls</th><th>Failed</th><th>Input tokens</th><th>Output tokens</th><th>Cost</th><th>Unpriced calls</th></tr></thead>
              <tbody>${report.data.map(
                (r) => html`<tr key=${r.userId}>
                  <td><a href=${`#/admin/users/${r.userId}`}><${ShortId} id=${r.userId} /></a></td>
                  <td>${count(r.requests)}</td><td>${count(r.failed)}</td><td>${count(r.inputTokens)}</td><td>${count(r.outputTokens)}</td>
                  <td>${money(r.cost)}</td><td>${count(r.unpricedRequests)}</td>
                </tr>`,
              )}</tbody>
            </table></div>`
          : html`<p class="muted">No model calls in this range.</p>`}`
      : error
        ? null
        : html`<p class="muted">Loading…</p>`}`;
}
