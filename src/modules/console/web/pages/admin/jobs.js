// Jobs: every queue's jobs by state and queue (retry the dead, discard what is
// not running), the schedules, and the event bus's dead letters.
import { useState } from 'preact/hooks';
import { api } from '../../lib/api.js';
import { when } from '../../lib/format.js';
import { html } from '../../lib/html.js';
import { ErrorNote, Field, useLoad } from '../../lib/ui.js';
import { Confirm, formValues, Paged, ShortId, withQuery } from './common.js';

const STATES = ['waiting', 'delayed', 'active', 'completed', 'dead'];

export function Jobs() {
  const [filters, setFilters] = useState({ state: 'dead' });
  const [n, setN] = useState(0);
  const [note, setNote] = useState(undefined);
  const [error, setError] = useState(undefined);
  async function retry(job) {
    setError(undefined);
    try {
      await api('POST', `/v1/admin/jobs/${encodeURIComponent(job.id)}/retry`, { body: {} });
      setNote(`${job.queue} job ${job.id} runs again.`);
    } catch (err) {
      setError(err);
    }
    setN((x) => x + 1);
  }
  return html`<form class="admin-filters" onSubmit=${(e) => (e.preventDefault(), setFilters(formValues(e)))}>
      <${Field} label="State">
        <select name="state" value=${filters.state}><option value="">Any</option>${STATES.map((s) => html`<option value=${s}>${s}</option>`)}</select>
      </${Field}>
      <${Field} label="Queue"><input name="queue" placeholder="e.g. mail.deliver" /></${Field}>
      <button type="submit">Filter</button>
    </form>
    <p role="status" class="muted">${note ?? ''}</p>
    <${ErrorNote} error=${error} />
    <${Paged} path=${withQuery('/v1/admin/jobs', filters)} label="Jobs" reloadKey=${n}>
      ${(jobs) => html`<div class="admin-scroll"><table>
        <thead><tr><th>Created</th><th>Queue</th><th>State</th><th>Attempts</th><th>Error</th><th>Owner</th><th>Actions</th></tr></thead>
        <tbody>${jobs.map(
          (j) => html`<tr key=${j.id} data-job=${j.id}>
            <td>${when(j.createdAt)}</td><td><code>${j.queue}</code></td>
            <td class=${j.state === 'dead' ? 'admin-bad' : ''}>${j.state}</td>
            <td>${j.attempts} / ${j.maxAttempts}</td>
            <td>${j.error ?? ''}${j.data === undefined || j.data === null ? '' : html`<details><summary>Payload</summary><pre class="admin-pre">${JSON.stringify(j.data, null, 2)}</pre></details>`}</td>
            <td>${j.userId ? html`<a href=${`#/admin/users/${j.userId}`}><${ShortId} id=${j.userId} /></a>` : html`<span class="muted">system</span>`}</td>
            <td class="admin-row">
              ${j.state === 'dead' ? html`<button type="button" aria-label=${`Retry ${j.queue} job ${j.id}`} onClick=${() => retry(j)}>Retry</button>` : null}
              ${j.state === 'active'
                ? null
                : html`<${Confirm} label="Discard" title=${`Discard ${j.queue} job ${j.id}`} confirm="Discard"
                    question=${`Discard ${j.queue} job ${j.id}? It will not run, and it leaves the list.`}
                    action=${async () => (await api('DELETE', `/v1/admin/jobs/${encodeURIComponent(j.id)}`), setN((x) => x + 1))} />`}
            </td>
          </tr>`,
        )}</tbody>
      </table></div>`}
    </${Paged}>
    <${Schedules} />
    <${DeadLetters} />`;
}

function Schedules() {
  const [schedules, error] = useLoad(() => api('GET', '/v1/admin/schedules'));
  return html`<h2>Schedules</h2>
    <${ErrorNote} error=${error} />
    ${schedules
      ? html`<div class="admin-scroll"><table>
          <thead><tr><th>Task</th><th>Cron</th><th>Queue</th><th>Last run</th><th>Next run</th></tr></thead>
          <tbody>${schedules.data.map(
            (s) => html`<tr key=${s.name}><td><code>${s.name}</code></td><td><code>${s.cron}</code> ${s.timezone}</td><td><code>${s.queue}</code></td>
              <td>${when(s.lastRunAt)}</td><td>${when(s.nextRunAt)}</td></tr>`,
          )}</tbody>
        </table></div>`
      : null}`;
}

/** Domain events whose handler kept failing: read-only, the API has no retry for them. */
function DeadLetters() {
  const [letters, error] = useLoad(() => api('GET', '/v1/admin/events/dead-letters?limit=100'));
  return html`<h2>Dead letters</h2>
    <p class="muted">Domain events whose handler kept failing, newest first.</p>
    <${ErrorNote} error=${error} />
    ${letters
      ? letters.data.length
        ? html`<div class="admin-scroll"><table>
            <thead><tr><th>Failed</th><th>Event</th><th>Handler group</th><th>Deliveries</th><th>Error</th></tr></thead>
            <tbody>${letters.data.map(
              (d) => html`<tr key=${`${d.group}:${d.id}`}><td>${when(d.failedAt)}</td><td><code>${d.type}</code> <${ShortId} id=${d.id} /></td>
                <td><code>${d.group}</code></td><td>${d.deliveries}</td><td>${d.error}</td></tr>`,
            )}</tbody>
          </table></div>`
        : html`<p class="muted">None.</p>`
      : null}`;
}
