// Budgets: the defaults every user without one of their own gets (per day,
// per month, in total), and any one user's, set or removed here. The API
// refuses a call that would pass a budget with 402.
import { api } from '../../lib/api.js';
import { count, money, when } from '../../lib/format.js';
import { html } from '../../lib/html.js';
import { ErrorNote, Field, Status, useAction, useLoad } from '../../lib/ui.js';
import { formValues, withQuery } from './common.js';
import { useState } from 'preact/hooks';

const PERIODS = [
  ['day', 'Per day'],
  ['month', 'Per month'],
  ['total', 'In total'],
];

/** The budgets of the defaults (no user) or of one user: a row per period, each set or cleared. */
function BudgetTable({ userId }) {
  const [list, error, reload] = useLoad(() => api('GET', withQuery('/v1/admin/budgets', { userId })), [userId]);
  const [state, run] = useAction();
  const whose = userId ? 'this user' : 'users without their own';
  const byPeriod = new Map((list?.data ?? []).map((b) => [b.period, b]));
  const set = (e, period) => {
    e.preventDefault();
    const f = formValues(e);
    const body = { userId: userId || null, period, limitUsd: f.limitUsd ? f.limitUsd : null, limitTokens: f.limitTokens ? Number(f.limitTokens) : null };
    run(async () => {
      await api('PUT', '/v1/admin/budgets', { body });
      reload();
    }, `Saved the ${period} budget of ${whose}.`);
  };
  const clear = (b) =>
    run(async () => {
      await api('DELETE', `/v1/admin/budgets/${b.id}`);
      reload();
    }, `Removed the ${b.period} budget of ${whose}.`);
  return html`<section aria-label=${userId ? 'User budgets' : 'Default budgets'}>
    <${ErrorNote} error=${error} />
    <div class="admin-scroll"><table>
      <thead><tr><th>Period</th><th>Now</th><th>USD limit</th><th>Token limit</th><th></th></tr></thead>
      <tbody>${PERIODS.map(([period, label]) => {
        const b = byPeriod.get(period);
        return html`<tr key=${`${userId}-${period}-${b?.updatedAt ?? ''}`}>
          <th scope="row">${label}</th>
          <td>${b ? html`${b.limit ? money(b.limit) : ''}${b.limit && b.limitTokens ? ' · ' : ''}${b.limitTokens ? `${count(b.limitTokens)} tokens` : ''} <small class="muted">since ${when(b.updatedAt)}</small>` : html`<span class="muted">none</span>`}</td>
          <td colspan="3">
            <form class="row" onSubmit=${(e) => set(e, period)} aria-label=${`${label} budget`}>
              <label class="sr-only" for=${`usd-${userId}-${period}`}>${label}: USD limit</label>
              <input id=${`usd-${userId}-${period}`} name="limitUsd" inputmode="decimal" placeholder="USD, e.g. 5.00" defaultValue=${b?.limit ? String(Number(b.limit)) : ''} />
              <label class="sr-only" for=${`tok-${userId}-${period}`}>${label}: token limit</label>
              <input id=${`tok-${userId}-${period}`} name="limitTokens" type="number" min="1" placeholder="tokens" defaultValue=${b?.limitTokens ?? ''} />
              <button type="submit" disabled=${state.busy}>Save ${period}</button>
              ${b ? html`<button type="button" class="secondary" disabled=${state.busy} onClick=${() => clear(b)}>Remove ${period}</button>` : null}
            </form>
          </td>
        </tr>`;
      })}</tbody>
    </table></div>
    <${Status} state=${state} />
  </section>`;
}

export function Budgets({ route }) {
  const [userId, setUserId] = useState(route.query.get('userId') ?? '');
  return html`<h2>Defaults</h2>
    <p class="muted">Apply to every user who has no budget of that period. A call that would pass one is refused (402).</p>
    <${BudgetTable} userId="" />
    <h2>One user</h2>
    <form class="admin-filters" onSubmit=${(e) => (e.preventDefault(), setUserId(formValues(e).userId.trim()))}>
      <${Field} label="User id"><input name="userId" defaultValue=${userId} required /></${Field}>
      <button type="submit">Show budgets</button>
    </form>
    ${userId ? html`<${BudgetTable} key=${userId} userId=${userId} />` : null}`;
}
