// Abuse: the hourly check's flags (clear them, or run the check now) and the
// bans, automatic and admin-set (lift them, or set one on a user, key or IP).
import { useState } from 'preact/hooks';
import { api } from '../../lib/api.js';
import { when } from '../../lib/format.js';
import { html } from '../../lib/html.js';
import { ErrorNote, Field } from '../../lib/ui.js';
import { Confirm, formValues, Paged, ShortId, withQuery } from './common.js';
import { BanForm } from './users.js';

export function Abuse({ route }) {
  const userId = route.query.get('userId') ?? '';
  const [n, setN] = useState(0);
  return html`<${Flags} userId=${userId} />
    <h2>Bans</h2>
    <${Bans} subject=${userId} reloadKey=${n} />
    <${BanForm} onDone=${() => setN((x) => x + 1)} />`;
}

function Flags({ userId }) {
  const [filters, setFilters] = useState({ userId, active: 'true' });
  const [n, setN] = useState(0);
  const [note, setNote] = useState(undefined);
  const [error, setError] = useState(undefined);
  async function check() {
    setError(undefined);
    try {
      const { raised } = await api('POST', '/v1/admin/abuse-flags/check', { body: {} });
      setNote(`The check raised ${raised.length} new flag${raised.length === 1 ? '' : 's'}.`);
      setN((x) => x + 1);
    } catch (err) {
      setError(err);
    }
  }
  return html`<h2>Abuse flags</h2>
    <form class="admin-filters" onSubmit=${(e) => (e.preventDefault(), setFilters(formValues(e)))}>
      <${Field} label="User id"><input name="userId" value=${filters.userId} /></${Field}>
      <${Field} label="Flags">
        <select name="active"><option value="true">Not cleared</option><option value="">All</option></select>
      </${Field}>
      <button type="submit">Filter</button>
      <button type="button" class="secondary" onClick=${check}>Run the check now</button>
    </form>
    <p role="status" class="muted">${note ?? ''}</p>
    <${ErrorNote} error=${error} />
    <${Paged} path=${withQuery('/v1/admin/abuse-flags', filters)} label="Abuse flags" reloadKey=${n}>
      ${(flags) => html`<div class="admin-scroll"><table>
        <thead><tr><th>Raised</th><th>Kind</th><th>User</th><th>Evidence</th><th>Cleared</th><th></th></tr></thead>
        <tbody>${flags.map(
          (f) => html`<tr key=${f.id}>
            <td>${when(f.createdAt)}</td><td><code>${f.kind}</code></td>
            <td><a href=${`#/admin/users/${f.userId}`}><${ShortId} id=${f.userId} /></a></td>
            <td>${f.evidence}</td><td>${f.clearedAt ? when(f.clearedAt) : ''}</td>
            <td>${f.clearedAt
              ? null
              : html`<button type="button" class="secondary" aria-label=${`Clear the ${f.kind} flag`}
                  onClick=${() => api('POST', `/v1/admin/abuse-flags/${f.id}/clear`, { body: {} }).then(() => setN((x) => x + 1), setError)}>Clear</button>`}</td>
          </tr>`,
        )}</tbody>
      </table></div>`}
    </${Paged}>`;
}

function Bans({ subject, reloadKey }) {
  const [filters, setFilters] = useState({ active: 'true', subject });
  const [n, setN] = useState(0);
  return html`<form class="admin-filters" onSubmit=${(e) => (e.preventDefault(), setFilters(formValues(e)))}>
      <${Field} label="Bans">
        <select name="active"><option value="true">In force</option><option value="false">Lifted or expired</option><option value="">All</option></select>
      </${Field}>
      <${Field} label="Kind of ban">
        <select name="kind"><option value="">Any</option><option value="user">user</option><option value="api_key">API key</option><option value="ip">IP</option></select>
      </${Field}>
      <${Field} label="Banned subject"><input name="subject" placeholder="exact id or IP" value=${filters.subject} /></${Field}>
      <button type="submit">Filter</button>
    </form>
    <${Paged} path=${withQuery('/v1/admin/bans', filters)} label="Bans" reloadKey=${reloadKey + n}>
      ${(bans) => html`<div class="admin-scroll"><table>
        <thead><tr><th>Set</th><th>Kind</th><th>Subject</th><th>Reason</th><th>Until</th><th>State</th><th></th></tr></thead>
        <tbody>${bans.map(
          (b) => html`<tr key=${b.id}>
            <td>${when(b.createdAt)}</td><td>${b.kind}</td>
            <td>${b.kind === 'user' ? html`<a href=${`#/admin/users/${b.subject}`}><${ShortId} id=${b.subject} /></a>` : html`<code>${b.subject}</code>`}</td>
            <td>${b.reason}${b.violations ? html` <span class="muted">(automatic, ${b.violations} violations)</span>` : ''}</td>
            <td>${when(b.expiresAt)}</td>
            <td>${b.active ? html`<span class="admin-bad">in force</span>` : b.liftedAt ? `lifted ${when(b.liftedAt)}` : 'expired'}</td>
            <td>${b.active
              ? html`<${Confirm} label="Lift" title=${`Lift the ban on ${b.subject}`} confirm="Lift ban" danger=${false}
                  question=${`Lift the ban on ${b.kind} ${b.subject}? They may call again at once.`}
                  action=${async () => (await api('DELETE', `/v1/admin/bans/${b.id}`), setN((x) => x + 1))} />`
              : null}</td>
          </tr>`,
        )}</tbody>
      </table></div>`}
    </${Paged}>`;
}
