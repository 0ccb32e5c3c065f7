// API keys: create one (its secret shown this once, to copy), see the others by their last four characters, revoke.
import { useRef, useState } from 'preact/hooks';
import { allPages, api } from '../lib/api.js';
import { when } from '../lib/format.js';
import { html } from '../lib/html.js';
import { ErrorNote, Field, Header, useLoad } from '../lib/ui.js';

// The scopes a key may carry (docs/api.md "Authentication"); none ticked means all but `notifications:send`.
const SCOPES = ['chat', 'models:read', 'usage:read', 'profile:read', 'profile:write', 'files', 'jobs:read', 'documents', 'knowledge', 'webhooks', 'notifications', 'notifications:send', 'sandbox'];

/** The secret of a key just created: the only time anyone sees it. */
function NewKey({ created, onDone }) {
  const [copied, setCopied] = useState(false);
  const input = useRef();
  async function copy() {
    try {
      await navigator.clipboard.writeText(created.key);
      setCopied(true);
    } catch {
      // No clipboard permission (an insecure origin, a browser that asks): select it for the keyboard's copy instead.
      input.current.select();
    }
  }
  return html`<section class="card new-key" aria-labelledby="new-key-title">
    <h2 id="new-key-title">Key "${created.name}" created</h2>
    <p>Copy it now: it is not shown again. Only its last four characters are kept for you to recognise it.</p>
    <div class="new-key-row">
      <${Field} label="Your new API key"><input ref=${input} readonly value=${created.key} onFocus=${(e) => e.currentTarget.select()} /><//>
      <button type="button" onClick=${copy}>${copied ? 'Copied' : 'Copy'}</button>
    </div>
    <p role="status" class="muted">${copied ? 'Copied to the clipboard.' : ''}</p>
    <button type="button" class="secondary" onClick=${onDone}>Done, I saved it</button>
  </section>`;
}

function CreateKey({ onCreated }) {
  const [error, setError] = useState(undefined);
  const [busy, setBusy] = useState(false);
  async function submit(e) {
    e.preventDefault();
    // Kept: the event's currentTarget is gone once the request has been awaited.
    const el = e.currentTarget;
    const form = new FormData(el);
    const scopes = form.getAll('scope');
    const expires = form.get('expires');
    setBusy(true);
    setError(undefined);
    try {
      const body = { name: String(form.get('name') ?? '').trim() };
      if (scopes.length) body.scopes = scopes;
      // A date means the end of that day where the user is.
      if (expires) body.expiresAt = new Date(`${expires}T23:59:59`).toISOString();
      const created = await api('POST', '/v1/api-keys', { body });
      el.reset();
      onCreated(created);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  return html`<form class="card create-key" onSubmit=${submit} aria-labelledby="create-key-title">
    <h2 id="create-key-title">Create a key</h2>
    <${Field} label="Name" hint="What uses it: a script, a server, a teammate's laptop"><input name="name" required maxlength="100" /><//>
    <fieldset class="scopes">
      <legend>Scopes <small class="muted">(none ticked: everything you may do, except sending notifications and managing keys)</small></legend>
      ${SCOPES.map((s) => html`<label class="scope"><input type="checkbox" name="scope" value=${s} /> <code>${s}</code></label>`)}
    </fieldset>
    <${Field} label="Expires on" hint="Leave empty for a key that does not expire"><input name="expires" type="date" /><//>
    <${ErrorNote} error=${error} />
    <button type="submit" disabled=${busy}>Create key</button>
  </form>`;
}

function KeyRow({ k, onRevoked }) {
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState(undefined);
  async function revoke() {
    try {
      await api('DELETE', `/v1/api-keys/${k.id}`);
      onRevoked();
    } catch (err) {
      setError(err);
    }
  }
  const expired = k.expiresAt && Date.parse(k.expiresAt) < Date.now();
  return html`<tr>
    <th scope="row">${k.name}</th>
    <td><code>${k.prefix}…${k.last4}</code></td>
    <td>${k.scopes.length ? k.scopes.map((s) => html`<code class="scope-tag">${s}</code> `) : html`<span class="muted">all</span>`}</td>
    <td>${when(k.createdAt)}</td>
    <td>${k.lastUsedAt ? when(k.lastUsedAt) : html`<span class="muted">never</span>`}</td>
    <td>${k.expiresAt ? html`${when(k.expiresAt)}${expired ? html` <strong class="error">expired</strong>` : null}` : html`<span class="muted">never</span>`}</td>
    <td class="key-actions">
      ${confirming
        ? html`<span>Revoke? Anything using it stops at once.</span>
            <button type="button" class="danger" onClick=${revoke}>Yes, revoke ${k.name}</button>
            <button type="button" class="secondary" onClick=${() => setConfirming(false)}>Keep</button>`
        : html`<button type="button" class="secondary" aria-label=${`Revoke ${k.name}`} onClick=${() => setConfirming(true)}>Revoke</button>`}
      <${ErrorNote} error=${error} />
    </td>
  </tr>`;
}

export function Keys() {
  const [keys, error, reload] = useLoad(() => allPages('/v1/api-keys?limit=100'));
  const [created, setCreated] = useState(undefined);
  return html`<div class="keys">
    <${Header} title="API keys" />
    <p class="muted">Keys let scripts and servers call the API as you: <code>Authorization: Bearer pk_…</code>, or as the API key of any OpenAI SDK pointed at <code>${location.origin}/v1</code>. A key can never manage keys, sessions or your account. Budgets for a key are on the <a href="#/usage">Usage</a> page.</p>
    ${created ? html`<${NewKey} created=${created} onDone=${() => setCreated(undefined)} />` : null}
    <${CreateKey} onCreated=${(k) => (setCreated(k), reload())} />
    <section aria-labelledby="keys-title">
      <h2 id="keys-title">Your keys</h2>
      <${ErrorNote} error=${error} />
      ${keys && !keys.data.length ? html`<p class="muted">No keys yet.</p>` : null}
      ${keys?.data.length
        ? html`<div class="table-scroll"><table>
            <thead><tr><th scope="col">Name</th><th scope="col">Key</th><th scope="col">Scopes</th><th scope="col">Created</th><th scope="col">Last used</th><th scope="col">Expires</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
            <tbody>${keys.data.map((k) => html`<${KeyRow} key=${k.id} k=${k} onRevoked=${reload} />`)}</tbody>
          </table></div>`
        : null}
    </section>
  </div>`;
}
