// API requests and bytes by day, route or user over a range of UTC days, and
// what each user stores (most first), from the usage module's reports.
import { useState } from 'preact/hooks';
import { api } from '../../lib/api.js';
import { bytes, count } from '../../lib/format.js';
import { html } from '../../lib/html.js';
import { ErrorNote, Field, useLoad } from '../../lib/ui.js';
import { formValues, Paged, ShortId, withQuery } from './common.js';

export function Requests() {
  const [filters, setFilters] = useState({ groupBy: 'route' });
  const [report, error] = useLoad(() => api('GET', withQuery('/v1/admin/usage/requests', filters)), [JSON.stringify(filters)]);
  const groups = (filters.groupBy ?? 'route').split(',');
  return html`<form class="admin-filters" onSubmit=${(e) => (e.preventDefault(), setFilters(formValues(e)))}>
      <${Field} label="From"><input name="from" type="date" value=${filters.from} /></${Field}>
      <${Field} label="To"><input name="to" type="date" value=${filters.to} /></${Field}>
      <${Field} label="User id"><input name="userId" value=${filters.userId} /></${Field}>
      <${Field} label="Group by"><select name="groupBy" value=${filters.groupBy}>
        <option value="route">Route</option><option value="day">Day</option><option value="user">User</option><option value="day,route">Day and route</option>
      </select></${Field}>
      <button type="submit">Show</button>
    </form>
    <${ErrorNote} error=${error} />
    ${report
      ? html`<p class="muted">${report.from} to ${report.to}: ${count(report.totals.requests)} requests, ${bytes(report.totals.bytesIn)} in, ${bytes(report.totals.bytesOut)} out</p>
        ${report.data.length
          ? html`<div class="admin-scroll"><table aria-label="Requests">
              <thead><tr>${groups.includes('day') ? html`<th>Day</th>` : null}${groups.includes('route') ? html`<th>Route</th>` : null}${groups.includes('user') ? html`<th>User</th>` : null}<th>Requests</th><th>In</th><th>Out</th></tr></thead>
              <tbody>${report.data.map(
                (r, i) => html`<tr key=${i}>
                  ${groups.includes('day') ? html`<td>${r.day}</td>` : null}
                  ${groups.includes('route') ? html`<td><code>${r.method} ${r.route}</code></td>` : null}
                  ${groups.includes('user') ? html`<td>${r.userId ? html`<a href=${`#/admin/users/${r.userId}`}><${ShortId} id=${r.userId} /></a>` : html`<span class="muted">signed out</span>`}</td>` : null}
                  <td>${count(r.requests)}</td><td>${bytes(r.bytesIn)}</td><td>${bytes(r.bytesOut)}</td>
                </tr>`,
              )}</tbody>
            </table></div>`
          : html`<p class="muted">No requests in this range.</p>`}`
      : error
        ? null
        : html`<p class="muted">Loading…</p>`}`;
}

export function Storage() {
  return html`<p class="muted">What each user stores, most first: every module's rows (text bytes as UTF-8) and files.</p>
    <${Paged} path="/v1/admin/usage/storage?limit=25" label="Storage by user">
      ${(rows) => html`<div class="admin-scroll"><table aria-label="Storage">
        <thead><tr><th>User</th><th>Total</th><th>By source</th></tr></thead>
        <tbody>${rows.map(
          (r) => html`<tr key=${r.userId}>
            <td><a href=${`#/admin/users/${r.userId}`}><${ShortId} id=${r.userId} /></a></td>
            <td>${bytes(r.bytes)}</td>
            <td>${r.sources.filter((s) => s.items).map((s) => html`<span class="tag">${s.source}: ${count(s.items)} · ${bytes(s.bytes)}</span> `)}</td>
          </tr>`,
        )}</tbody>
      </table></div>`}
    </${Paged}>`;
}
