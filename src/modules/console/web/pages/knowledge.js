// Knowledge: collections of files and documents, their indexing as it happens, and search over one collection.
import DOMPurify from 'dompurify';
import { useEffect, useRef, useState } from 'preact/hooks';
import { allPages, api } from '../lib/api.js';
import { when } from '../lib/format.js';
import { html } from '../lib/html.js';
import { go } from '../lib/router.js';
import { ErrorNote, Field, Header, useLoad } from '../lib/ui.js';

const BUSY = new Set(['queued', 'indexing']);

/**
 * `knowledge.item.updated` events from the WebSocket (`knowledge` topic), with
 * their progress. Best effort: the socket is authenticated by the session
 * cookie only from an allowed origin, so a page that gets no `ready` simply
 * goes on with polling, which is what makes the list correct either way.
 */
function useKnowledgeEvents(onEvent) {
  const handler = useRef(onEvent);
  handler.current = onEvent;
  useEffect(() => {
    let ws;
    try {
      ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`, ['parley.v1']);
    } catch {
      return undefined;
    }
    ws.onmessage = (m) => {
      let frame;
      try {
        frame = JSON.parse(m.data);
      } catch {
        return;
      }
      if (frame.type === 'ready') ws.send(JSON.stringify({ type: 'subscribe', topic: 'knowledge' }));
      if (frame.type === 'event' && frame.event.type === 'knowledge.item.updated') handler.current(frame.event.payload);
    };
    ws.onerror = () => {};
    // Closing a socket still connecting makes Chromium log an error: close it once it opens instead.
    return () => (ws.readyState === WebSocket.CONNECTING ? (ws.onopen = () => ws.close()) : ws.close());
  }, []);
}

const snippet = (s) => DOMPurify.sanitize(s ?? '', { ALLOWED_TAGS: ['mark'], ALLOWED_ATTR: [] });

function Progress({ item, live }) {
  const pct = live?.progress;
  if (item.status === 'indexing' && typeof pct === 'number')
    return html`<progress max="100" value=${pct} aria-label=${`Indexing ${item.title}`}>${pct}%</progress> <span>${pct}%</span>`;
  if (BUSY.has(item.status)) return html`<progress aria-label=${`Indexing ${item.title}`}></progress>`;
  return null;
}

function AddItem({ collectionId, onAdded }) {
  const [files] = useLoad(() => allPages('/v1/files?limit=100'), []);
  const [docs] = useLoad(() => allPages('/v1/documents?limit=100'), []);
  const [error, setError] = useState(undefined);

  async function add(e) {
    e.preventDefault();
    const form = e.currentTarget;
    const source = new FormData(form).get('source');
    if (!source) return;
    const [kind, id] = source.split(':');
    setError(undefined);
    try {
      await api('POST', `/v1/knowledge/collections/${collectionId}/items`, { body: kind === 'file' ? { fileId: id } : { documentId: id } });
      form.reset();
      onAdded();
    } catch (err) {
      setError(err);
    }
  }

  return html`<form class="card row add-item" onSubmit=${add}>
    <${Field} label="File or document to add">
      <select name="source" required>
        <option value="">Choose…</option>
        <optgroup label="Files">${(files?.data ?? []).map((f) => html`<option value=${`file:${f.id}`}>${f.name}</option>`)}</optgroup>
        <optgroup label="Documents">${(docs?.data ?? []).map((d) => html`<option value=${`document:${d.id}`}>${d.title}</option>`)}</optgroup>
      </select>
    </${Field}>
    <button type="submit">Add to collection</button>
    <${ErrorNote} error=${error} />
  </form>`;
}

function Search({ collectionId }) {
  const [results, setResults] = useState(undefined);
  const [error, setError] = useState(undefined);
  const [busy, setBusy] = useState(false);

  async function search(e) {
    e.preventDefault();
    const q = new FormData(e.currentTarget).get('q');
    setBusy(true);
    setError(undefined);
    try {
      setResults(await api('GET', `/v1/knowledge/search?q=${encodeURIComponent(q)}&collectionId=${collectionId}&limit=20`));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return html`<section aria-labelledby="search-h">
    <h2 id="search-h">Search</h2>
    <form class="row search" role="search" onSubmit=${search}>
      <${Field} label="Search this collection"><input name="q" type="search" required /></${Field}>
      <button type="submit" disabled=${busy}>Search</button>
    </form>
    <${ErrorNote} error=${error} />
    ${results
      ? html`${results.degraded ? html`<p class="muted">Full-text results only: the embedding model could not be reached.</p>` : null}
          ${results.data.length
            ? html`<ol class="results" aria-label="Results">
                ${results.data.map(
                  (r, i) => html`<li key=${i}>
                    <strong>${r.title}</strong> <small class="muted">${r.kind}${r.headings?.length ? ` · ${r.headings.join(' › ')}` : ''}</small>
                    <p class="snippet" dangerouslySetInnerHTML=${{ __html: snippet(r.snippet) }} />
                  </li>`,
                )}
              </ol>`
            : html`<p class="muted">Nothing found.</p>`}`
      : null}
  </section>`;
}

function Collection({ id, onChange }) {
  const [collection, error] = useLoad(() => api('GET', `/v1/knowledge/collections/${id}`), [id]);
  const [items, itemsError, reloadItems] = useLoad(() => allPages(`/v1/knowledge/collections/${id}/items?limit=100`), [id]);
  const [live, setLive] = useState({});
  const [actionError, setActionError] = useState(undefined);

  useKnowledgeEvents((e) => {
    setLive((l) => ({ ...l, [e.itemId]: e }));
    if (!BUSY.has(e.status)) reloadItems();
  });

  // While anything is queued or indexing, the list is read again each second: the state is in the item itself.
  const busy = (items?.data ?? []).some((i) => BUSY.has(i.status));
  useEffect(() => {
    if (!busy) return undefined;
    const timer = setInterval(reloadItems, 1000);
    return () => clearInterval(timer);
  }, [busy]);

  async function act(fn) {
    setActionError(undefined);
    try {
      await fn();
      reloadItems();
    } catch (err) {
      setActionError(err);
    }
  }

  async function remove() {
    await act(async () => {
      await api('DELETE', `/v1/knowledge/collections/${id}`);
      onChange();
      go('/knowledge');
    });
  }

  if (error) return html`<${ErrorNote} error=${error} />`;
  if (!collection) return html`<p class="loading">Loading…</p>`;
  return html`<article class="collection">
    <${Header} title=${collection.name}>
      <button type="button" class="danger" onClick=${remove}>Delete collection</button>
    </${Header}>
    ${collection.description ? html`<p class="muted">${collection.description}</p>` : null}
    <${AddItem} collectionId=${id} onAdded=${reloadItems} />
    <${ErrorNote} error=${itemsError || actionError} />
    <section aria-labelledby="items-h">
      <h2 id="items-h">Items</h2>
      ${items?.data?.length
        ? html`<table class="items" aria-busy=${busy}>
            <thead><tr><th scope="col">Title</th><th scope="col">Kind</th><th scope="col">State</th><th scope="col">Passages</th><th scope="col">Indexed</th><th scope="col">Actions</th></tr></thead>
            <tbody>
              ${items.data.map(
                (i) => html`<tr key=${i.id} data-status=${i.status}>
                  <td>${i.title}</td>
                  <td>${i.kind}</td>
                  <td class="state">
                    <span class=${`status ${i.status}`}>${i.status}</span>
                    <${Progress} item=${i} live=${live[i.id]} />
                    ${i.error ? html`<small class="error">${i.error.message}</small>` : null}
                    ${i.truncated ? html`<small class="muted">only the beginning was indexed</small>` : null}
                  </td>
                  <td>${i.chunks ?? '—'}</td>
                  <td>${when(i.indexedAt)}</td>
                  <td class="actions">
                    ${BUSY.has(i.status) ? null : html`<button type="button" class="link" onClick=${() => act(() => api('POST', `/v1/knowledge/items/${i.id}/reindex`))}>Reindex<span class="sr-only"> ${i.title}</span></button>`}
                    <button type="button" class="link" onClick=${() => act(() => api('DELETE', `/v1/knowledge/collections/${id}/items/${i.id}`))}>Remove<span class="sr-only"> ${i.title}</span></button>
                  </td>
                </tr>`,
              )}
            </tbody>
          </table>`
        : html`<p class="muted">Nothing in this collection yet: add a file or a document.</p>`}
    </section>
    <${Search} collectionId=${id} />
  </article>`;
}

function NewCollection({ onCreated }) {
  const [projects] = useLoad(() => allPages('/v1/projects?limit=100'), []);
  const [error, setError] = useState(undefined);
  async function submit(e) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    setError(undefined);
    try {
      const c = await api('POST', '/v1/knowledge/collections', { body: { name: f.get('name'), description: f.get('description') || undefined, projectId: f.get('projectId') || undefined } });
      onCreated();
      go(`/knowledge/${c.id}`);
    } catch (err) {
      setError(err);
    }
  }
  return html`<${Header} title="New collection" />
    <form class="card" onSubmit=${submit}>
      <${Field} label="Collection name"><input name="name" required maxlength="200" /></${Field}>
      <${Field} label="Description"><input name="description" maxlength="2000" /></${Field}>
      <${Field} label="Project" hint="A project's collection grounds that project's answers">
        <select name="projectId"><option value="">None</option>${(projects?.data ?? []).map((p) => html`<option value=${p.id}>${p.name}</option>`)}</select>
      </${Field}>
      <${ErrorNote} error=${error} />
      <button type="submit">Create collection</button>
    </form>`;
}

export function Knowledge({ route }) {
  const id = route.parts[1];
  const [collections, error, reload] = useLoad(() => allPages('/v1/knowledge/collections?limit=100'), []);
  const [status] = useLoad(() => api('GET', '/v1/knowledge/status'), []);

  return html`<div class="knowledge-page">
    <aside class="knowledge-list" aria-label="Collections">
      <a class="button" href="#/knowledge/new">New collection</a>
      <${ErrorNote} error=${error} />
      <ul>
        ${(collections?.data ?? []).map((c) => html`<li key=${c.id}><a href=${`#/knowledge/${c.id}`} aria-current=${c.id === id ? 'page' : undefined}>${c.name}</a></li>`)}
      </ul>
      ${status ? html`<p class="muted small">Search: ${status.mode === 'hybrid' ? `hybrid (${status.embeddingModel})` : 'full text'}</p>` : null}
    </aside>
    <div class="knowledge-main">
      ${id === 'new'
        ? html`<${NewCollection} onCreated=${reload} />`
        : id
          ? html`<${Collection} key=${id} id=${id} onChange=${reload} />`
          : html`<${Header} title="Knowledge" /><p class="muted">${collections?.data?.length ? 'Choose a collection, or make a new one.' : 'No collections yet: gather files and documents to search them and ground answers.'}</p>`}
    </div>
  </div>`;
}
