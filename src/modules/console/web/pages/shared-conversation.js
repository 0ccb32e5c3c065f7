// A conversation shared by link, open without a session: `#/shared/conversation/<token>`. The token rides in the
// fragment, which browsers never send to a server, and goes to the API in a header, never in a URL.
import { api } from '../lib/api.js';
import { html } from '../lib/html.js';
import { markdown } from '../lib/markdown.js';
import { ErrorNote, useLoad } from '../lib/ui.js';

/** The token as the address carries it; a malformed escape is kept as it is (then an unknown link). */
function tokenOf(part) {
  try {
    return decodeURIComponent(part ?? '');
  } catch {
    return part;
  }
}

const WHY = {
  link_revoked: "This link was revoked by the conversation's owner.",
  link_expired: 'This link has expired.',
};

/** Read-only: what was asked and answered up to the message the link was made at; files by name. */
export function SharedConversation({ route }) {
  const token = tokenOf(route.parts[2]);
  const [shared, error] = useLoad(() => api('GET', '/v1/shared/conversation', { headers: { 'x-share-token': token } }), [token]);
  let body;
  if (error) {
    const why = WHY[error.code] ?? (error.status === 404 || error.status === 400 ? 'This link does not open any conversation.' : undefined);
    body = why ? html`<p role="alert" class="error">${why}</p>` : html`<${ErrorNote} error=${error} />`;
  } else if (!shared) body = html`<p class="loading">Loading…</p>`;
  else
    body = html`<p class="muted">Shared ${new Date(shared.sharedAt).toLocaleString()} · read-only</p>
      <div class="messages">
        ${shared.messages.map(
          (m, i) => html`<article key=${i} class=${`msg ${m.role}`}>
            ${m.files.length ? html`<ul class="files">${m.files.map((f) => html`<li>${f.name}</li>`)}</ul>` : null}
            ${m.role === 'user' ? html`<p class="plain">${m.text}</p>` : html`<div class="md" dangerouslySetInnerHTML=${{ __html: markdown(m.text) }} />`}
          </article>`,
        )}
      </div>`;
  return html`<main class="shared-conversation conversation" id="main">
    <header class="conversation-header"><h1>${shared?.title || 'Shared conversation'}</h1></header>
    ${body}
    <p class="muted"><a href="#/chat">Parley</a></p>
  </main>`;
}
