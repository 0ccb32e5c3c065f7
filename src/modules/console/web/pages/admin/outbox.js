// The outbox: every email Parley sent (or, without SMTP, would have), with
// the delivery error when SMTP refused it.
import { useState } from 'preact/hooks';
import { html } from '../../lib/html.js';
import { when } from '../../lib/format.js';
import { Field } from '../../lib/ui.js';
import { formValues, Paged, withQuery } from './common.js';

export function Outbox() {
  const [filters, setFilters] = useState({});
  return html`<form class="admin-filters" onSubmit=${(e) => (e.preventDefault(), setFilters(formValues(e)))}>
      <${Field} label="Recipient"><input name="to" type="email" placeholder="exact address" /></${Field}>
      <button type="submit">Filter</button>
    </form>
    <${Paged} path=${withQuery('/v1/admin/outbox', filters)} label="Sent mail">
      ${(messages) => html`<div class="admin-scroll"><table>
        <thead><tr><th>Created</th><th>To</th><th>Subject</th><th>Transport</th><th>Sent</th><th>Error</th></tr></thead>
        <tbody>${messages.map(
          (m) => html`<tr key=${m.id}>
            <td>${when(m.createdAt)}</td><td>${m.to}</td>
            <td><details><summary>${m.subject}</summary><pre class="admin-pre">${m.text}</pre></details></td>
            <td>${m.transport}</td><td>${m.transport === 'smtp' ? when(m.sentAt) : 'kept here'}</td>
            <td class=${m.error ? 'admin-bad' : ''}>${m.error ?? ''}</td>
          </tr>`,
        )}</tbody>
      </table></div>`}
    </${Paged}>`;
}
