// Users: find them by email or role, change a role, disable or enable; one
// user's page adds a ban and their quotas (budgets).
import { useState } from 'preact/hooks';
import { api } from '../../lib/api.js';
import { count, money, when } from '../../lib/format.js';
import { html } from '../../lib/html.js';
import { ErrorNote, Field, useLoad } from '../../lib/ui.js';
import { Confirm, formValues, Paged, withQuery } from './common.js';

export function Users({ route }) {
  const id = route.parts[2];
  return id ? html`<${UserDetail} id=${id} />` : html`<${UserList} />`;
}

function UserList() {
  const [filters, setFilters] = useState({});
  const [n, setN] = useState(0);
  const [note, setNote] = useState(undefined);
  const [error, setError] = useState(undefined);
  const act = async (fn, done) => {
    setError(undefined);
    try {
      await fn();
      setNote(done);
      setN((x) => x + 1);
    } catch (err) {
      setError(err);
      setN((x) => x + 1);
    }
  };
  return html`<form class="admin-filters" onSubmit=${(e) => (e.preventDefault(), setFilters(formValues(e)))}>
      <${Field} label="Email contains"><input name="email" type="search" /></${Field}>
      <${Field} label="Role">
        <select name="role"><option value="">Any</option><option value="user">user</option><option value="admin">admin</option></select>
      </${Field}>
      <button type="submit">Filter</button>
    </form>
    <p role="status" class="muted">${note ?? ''}</p>
    <${ErrorNote} error=${error} />
    <${Paged} path=${withQuery('/v1/admin/users', filters)} label="Users" reloadKey=${n}>
      ${(users) => html`<div class="admin-scroll"><table>
        <thead><tr><th>Email</th><th>Name</th><th>Role</th><th>Status</th><th>Created</th><th>Actions</th></tr></thead>
        <tbody>${users.map(
          (u) => html`<tr key=${u.id} data-user=${u.email}>
            <td><a href=${`#/admin/users/${u.id}`}>${u.email}</a></td>
            <td>${u.name ?? ''}</td>
            <td>
              <select aria-label=${`Role of ${u.email}`} value=${u.role}
                onChange=${(e) => act(() => api('PATCH', `/v1/admin/users/${u.id}`, { body: { role: e.currentTarget.value } }), `${u.email} is now ${e.currentTarget.value}.`)}>
                <option value="user">user</option><option value="admin">admin</option>
              </select>
            </td>
            <td>${u.disabled ? html`<span class="admin-bad">disabled</span>` : 'active'}</td>
            <td>${when(u.createdAt)}</td>
            <td class="admin-row">
              ${u.disabled
                ? html`<button type="button" class="secondary" aria-label=${`Enable ${u.email}`}
                    onClick=${() => act(() => api('POST', `/v1/admin/users/${u.id}/enable`, { body: {} }), `${u.email} is enabled.`)}>Enable</button>`
                : html`<${Confirm} label="Disable" title=${`Disable ${u.email}`} confirm="Disable"
                    question=${`Disable ${u.email}? Every session ends and their API keys stop working at once.`}
                    action=${async () => act(() => api('POST', `/v1/admin/users/${u.id}/disable`, { body: {} }), `${u.email} is disabled.`)} />`}
            </td>
          </tr>`,
        )}</tbody>
      </table></div>`}
    </${Paged}>`;
}

const DURATIONS = [
  [3600, '1 hour'],
  [86400, '1 day'],
  [7 * 86400, '7 days'],
  [30 * 86400, '30 days'],
  [365 * 86400, '1 year'],
];

/** A ban form: a user, an API key or an IP; the subject fixed when given. */
export function BanForm({ kind: fixedKind, subject: fixedSubject, name, onDone }) {
  const [kind, setKind] = useState(fixedKind ?? 'user');
  const [subject, setSubject] = useState(fixedSubject ?? '');
  const [seconds, setSeconds] = useState(86400);
  const [reason, setReason] = useState('');
  const [note, setNote] = useState(undefined);
  const who = name ?? (subject || 'this subject');
  const ready = subject.trim() && reason.trim();
  return html`<div class="card admin-form">
    <h3>Ban ${fixedSubject ? who : 'a user, API key or IP address'}</h3>
    ${fixedKind
      ? null
      : html`<${Field} label="Kind">
            <select value=${kind} onChange=${(e) => setKind(e.currentTarget.value)}>
              <option value="user">user id</option><option value="api_key">API key id</option><option value="ip">IP address</option>
            </select>
          </${Field}>
          <${Field} label="Subject"><input value=${subject} onInput=${(e) => setSubject(e.currentTarget.value)} /></${Field}>`}
    <${Field} label="Ban for">
      <select value=${seconds} onChange=${(e) => setSeconds(Number(e.currentTarget.value))}>
        ${DURATIONS.map(([s, label]) => html`<option value=${s}>${label}</option>`)}
      </select>
    </${Field}>
    <${Field} label="Reason"><input value=${reason} maxlength="500" onInput=${(e) => setReason(e.currentTarget.value)} /></${Field}>
    ${ready
      ? html`<${Confirm} label="Ban" title=${`Ban ${who}`} confirm="Ban" className="danger"
          question=${`Ban ${who} for ${DURATIONS.find(([s]) => s === seconds)?.[1]}? Their requests are refused at once.`}
          action=${async () => {
            await api('POST', '/v1/admin/bans', { body: { kind, subject: subject.trim(), seconds, reason: reason.trim() } });
            setNote(`${who} is banned.`);
            setReason('');
            onDone?.();
          }} />`
      : html`<button type="button" class="danger" disabled>Ban</button>`}
    <p role="status" class="muted">${note ?? ''}</p>
  </div>`;
}

function UserDetail({ id }) {
  const [n, setN] = useState(0);
  const [user, error] = useLoad(() => api('GET', `/v1/admin/users/${id}`), [id, n]);
  if (error) return html`<p><a href="#/admin/users">All users</a></p><${ErrorNote} error=${error} />`;
  if (!user) return html`<p class="muted">Loading…</p>`;
  return html`<p><a href="#/admin/users">All users</a></p>
    <section class="card admin-form" aria-labelledby="admin-user">
      <h2 id="admin-user">${user.email}</h2>
      <dl class="admin-facts">
        <dt>Name</dt><dd>${user.name ?? '—'}</dd>
        <dt>Role</dt><dd>${user.role}</dd>
        <dt>Status</dt><dd>${user.disabled ? 'disabled' : 'active'}</dd>
        <dt>Email verified</dt><dd>${user.emailVerified ? 'yes' : 'no'}</dd>
        <dt>Created</dt><dd>${when(user.createdAt)}</dd>
        <dt>Id</dt><dd><code>${user.id}</code></dd>
      </dl>
      <p class="admin-row">
        <a href=${`#/admin/audit?userId=${user.id}`}>Audit log</a>
        <a href=${`#/admin/usage?userId=${user.id}`}>Usage</a>
        <a href=${`#/admin/abuse?userId=${user.id}`}>Abuse flags and bans</a>
      </p>
    </section>
    <${BanForm} kind="user" subject=${user.id} name=${user.email} onDone=${() => setN((x) => x + 1)} />
    <${Budgets} userId=${user.id} email=${user.email} />`;
}

/** Quotas: the user's budgets per period, in USD and/or tokens. */
function Budgets({ userId, email }) {
  const [n, setN] = useState(0);
  const [budgets, error] = useLoad(() => api('GET', withQuery('/v1/admin/budgets', { userId })), [userId, n]);
  const [formError, setFormError] = useState(undefined);
  async function save(e) {
    e.preventDefault();
    const f = formValues(e);
    setFormError(undefined);
    try {
      await api('PUT', '/v1/admin/budgets', {
        body: { userId, period: f.period, limitUsd: f.limitUsd === '' ? null : f.limitUsd, limitTokens: f.limitTokens === '' ? null : Number(f.limitTokens) },
      });
      setN((x) => x + 1);
    } catch (err) {
      setFormError(err);
    }
  }
  return html`<section class="card admin-form" aria-labelledby="admin-quotas">
    <h3 id="admin-quotas">Quotas</h3>
    <${ErrorNote} error=${error} />
    ${budgets?.data.length
      ? html`<div class="admin-scroll"><table>
          <thead><tr><th>Period</th><th>Limit (USD)</th><th>Limit (tokens)</th><th></th></tr></thead>
          <tbody>${budgets.data.map(
            (b) => html`<tr key=${b.id}>
              <td>${b.period}</td><td>${money(b.limit)}</td><td>${count(b.limitTokens)}</td>
              <td><${Confirm} label="Remove" title=${`Remove the ${b.period} quota of ${email}`} confirm="Remove"
                question=${`Remove the ${b.period} quota of ${email}? The default budget applies again, if there is one.`}
                action=${async () => (await api('DELETE', `/v1/admin/budgets/${b.id}`), setN((x) => x + 1))} /></td>
            </tr>`,
          )}</tbody>
        </table></div>`
      : budgets
        ? html`<p class="muted">No quota of their own: the defaults apply.</p>`
        : null}
    <form class="admin-filters" onSubmit=${save}>
      <${Field} label="Period">
        <select name="period"><option value="day">day</option><option value="month">month</option><option value="total">total</option></select>
      </${Field}>
      <${Field} label="Limit in USD"><input name="limitUsd" inputmode="decimal" placeholder="25.00" /></${Field}>
      <${Field} label="Limit in tokens"><input name="limitTokens" type="number" min="1" step="1" /></${Field}>
      <button type="submit">Set quota</button>
    </form>
    <${ErrorNote} error=${formError} />
  </section>`;
}
