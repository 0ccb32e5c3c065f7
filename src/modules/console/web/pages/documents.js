// Documents: Markdown with versions (diff, restore), attachments, sharing by email and by link, templates, who else is there, and comment threads on quoted passages.
import { useEffect, useState } from 'preact/hooks';
import { allPages, api } from '../lib/api.js';
import { when } from '../lib/format.js';
import { html } from '../lib/html.js';
import { markdown } from '../lib/markdown.js';
import { go } from '../lib/router.js';
import { ExpiryField, expiresIn, linkState, NewLinkAddress } from '../lib/share-links.js';
import { ErrorNote, Field, Header, Status, useAction, useLoad, usePaged } from '../lib/ui.js';

const RANK = { viewer: 0, commenter: 1, editor: 2, owner: 3 };
const atLeast = (role, least) => RANK[role] >= RANK[least];

function NewDocument({ onCreated }) {
  const [error, setError] = useState(undefined);
  const [templates] = useLoad(() => allPages('/v1/documents?template=true&limit=100').catch(() => ({ data: [] })), []);
  async function submit(e) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    setError(undefined);
    try {
      const body = { title: f.get('title') || undefined };
      // From a template: its title, text and tags, unless typed here.
      if (f.get('templateId')) {
        body.templateId = f.get('templateId');
        if (f.get('body')) body.body = f.get('body');
      } else body.body = f.get('body');
      const doc = await api('POST', '/v1/documents', { body });
      onCreated();
      go(`/documents/${doc.id}`);
    } catch (err) {
      setError(err);
    }
  }
  return html`<${Header} title="New document" />
    <form class="card" onSubmit=${submit}>
      ${templates?.data?.length
        ? html`<${Field} label="Start from" hint="A template's title, text and tags, unless you type your own here">
            <select name="templateId"><option value="">A blank page</option>${templates.data.map((d) => html`<option value=${d.id}>${d.title}</option>`)}</select>
          </${Field}>`
        : null}
      <${Field} label="Title"><input name="title" maxlength="300" placeholder="Left blank: the first line of the text" /></${Field}>
      <${Field} label="Text"><textarea name="body" rows="12"></textarea></${Field}>
      <${ErrorNote} error=${error} />
      <button type="submit">Create document</button>
    </form>`;
}

/** The editor: every save names the version it started from, so a save over someone else's is a conflict, never a silent overwrite. */
function Editor({ doc, onSaved, note }) {
  const [title, setTitle] = useState(doc.title);
  const [body, setBody] = useState(doc.body);
  const [base, setBase] = useState(doc.version);
  const [conflict, setConflict] = useState(undefined);
  const [error, setError] = useState(undefined);
  const [preview, setPreview] = useState(false);
  const canEdit = atLeast(doc.role, 'editor');

  async function save(e) {
    e.preventDefault();
    setError(undefined);
    try {
      const saved = await api('PUT', `/v1/documents/${doc.id}`, { body: { title, body, baseVersion: base } });
      setConflict(undefined);
      setBase(saved.version);
      onSaved(saved.version === base ? 'Nothing changed' : `Saved version ${saved.version}`);
    } catch (err) {
      if (err.code === 'version_conflict') setConflict(err.problem.currentVersion);
      else setError(err);
    }
  }

  function takeTheirs() {
    setTitle(conflict.title);
    setBody(conflict.body);
    setBase(conflict.number);
    setConflict(undefined);
  }

  return html`<form class="editor" onSubmit=${save}>
    <${Field} label="Title"><input value=${title} onInput=${(e) => setTitle(e.currentTarget.value)} required maxlength="300" readonly=${!canEdit} /></${Field}>
    <div class="row tabs" role="group" aria-label="View">
      <button type="button" class=${preview ? 'secondary' : ''} aria-pressed=${!preview} onClick=${() => setPreview(false)}>Write</button>
      <button type="button" class=${preview ? '' : 'secondary'} aria-pressed=${preview} onClick=${() => setPreview(true)}>Preview</button>
    </div>
    ${preview
      ? html`<div class="md preview" dangerouslySetInnerHTML=${{ __html: markdown(body) }} />`
      : html`<${Field} label="Text"><textarea rows="16" value=${body} onInput=${(e) => setBody(e.currentTarget.value)} readonly=${!canEdit}></textarea></${Field}>`}
    ${conflict
      ? html`<div class="card conflict" role="alert">
          <p>Version ${conflict.number} was saved while you were editing. Keep your text and save over it, or take theirs.</p>
          <div class="row">
            <button type="button" onClick=${() => (setBase(conflict.number), setConflict(undefined))}>Keep mine</button>
            <button type="button" class="secondary" onClick=${takeTheirs}>Take theirs</button>
          </div>
        </div>`
      : null}
    <${ErrorNote} error=${error} />
    <div class="row">
      ${canEdit ? html`<button type="submit">Save</button>` : html`<span class="muted">You can read this document (${doc.role}).</span>`}
      <span role="status" class="muted">${note}</span>
      <span class="muted">Version ${base}</span>
    </div>
  </form>`;
}

function Versions({ doc, version, onRestored }) {
  const path = `/v1/documents/${doc.id}/versions?limit=100`;
  const versions = usePaged(path, [path, version]);
  const [diff, setDiff] = useState(undefined);
  const [actionError, setActionError] = useState(undefined);

  async function showDiff(n) {
    setActionError(undefined);
    try {
      setDiff(await api('GET', `/v1/documents/${doc.id}/diff?from=${n - 1}&to=${n}`));
    } catch (err) {
      setActionError(err);
    }
  }

  async function restore(n) {
    setActionError(undefined);
    try {
      await api('POST', `/v1/documents/${doc.id}/versions/${n}/restore`, { body: {} });
      versions.reload();
      onRestored(n);
    } catch (err) {
      setActionError(err);
    }
  }

  const list = versions.items ?? [];
  return html`<section aria-labelledby="versions-h">
    <h2 id="versions-h">Versions</h2>
    <${ErrorNote} error=${versions.error || actionError} />
    <ol class="versions" reversed>
      ${list.map(
        (v) => html`<li key=${v.number} aria-current=${v.number === version ? 'true' : undefined}>
          <span><strong>Version ${v.number}</strong> ${v.title} <small class="muted">${when(v.createdAt)}${v.restoredFrom ? ` · restored from ${v.restoredFrom}` : ''}</small></span>
          <span class="row">
            ${v.number > 1 ? html`<button type="button" class="link" onClick=${() => showDiff(v.number)}>Changes in version ${v.number}</button>` : null}
            ${v.number !== version && atLeast(doc.role, 'editor') ? html`<button type="button" class="link" onClick=${() => restore(v.number)}>Restore version ${v.number}</button>` : null}
          </span>
        </li>`,
      )}
    </ol>
    ${versions.cursor ? html`<button type="button" class="link" disabled=${versions.busy} onClick=${versions.more}>Older versions</button>` : null}
    ${diff
      ? html`<figure class="diff">
          <figcaption>Version ${diff.from} → ${diff.to}: +${diff.added} −${diff.removed}${diff.titleChanged ? ', title changed' : ''}
            <button type="button" class="link" onClick=${() => setDiff(undefined)}>Close changes</button></figcaption>
          <pre>${diff.diff.split('\n').map((line) => html`<span class=${line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : ''}>${line}\n</span>`)}</pre>
        </figure>`
      : null}
  </section>`;
}

function Shares({ doc }) {
  const [shares, error, reload] = useLoad(() => api('GET', `/v1/documents/${doc.id}/shares`), [doc.id]);
  const [actionError, setActionError] = useState(undefined);
  const [note, setNote] = useState('');

  async function act(fn, done) {
    setActionError(undefined);
    setNote('');
    try {
      await fn();
      setNote(done);
      reload();
      return true;
    } catch (err) {
      setActionError(err);
      return false;
    }
  }

  async function share(e) {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    if (await act(() => api('POST', `/v1/documents/${doc.id}/shares`, { body: { email: f.get('email'), role: f.get('role') } }), `Shared with ${f.get('email')}`)) form.reset();
  }

  return html`<section aria-labelledby="shares-h">
    <h2 id="shares-h">Sharing</h2>
    <${ErrorNote} error=${error || actionError} />
    <p role="status" class="muted">${note}</p>
    <ul class="shares">
      ${(shares?.data ?? []).map(
        (s) => html`<li key=${s.userId}>
          <span>${s.email}</span>
          <label class="inline"><span class="sr-only">Role of ${s.email}</span>
            <select value=${s.role} onChange=${(e) => act(() => api('PATCH', `/v1/documents/${doc.id}/shares/${s.userId}`, { body: { role: e.currentTarget.value } }), `${s.email} can now ${e.currentTarget.value === 'viewer' ? 'read' : e.currentTarget.value === 'commenter' ? 'comment' : 'edit'}`)}>
              <option value="viewer">Viewer</option><option value="commenter">Commenter</option><option value="editor">Editor</option>
            </select>
          </label>
          <button type="button" class="link" onClick=${() => act(() => api('DELETE', `/v1/documents/${doc.id}/shares/${s.userId}`), `Stopped sharing with ${s.email}`)}>Stop sharing with ${s.email}</button>
        </li>`,
      )}
    </ul>
    <form class="card row share-form" onSubmit=${share}>
      <${Field} label="Share with (email)"><input name="email" type="email" required /></${Field}>
      <div class="field">
        <label for="share-role">Role</label>
        <select id="share-role" name="role"><option value="viewer">Viewer</option><option value="commenter">Commenter</option><option value="editor">Editor</option></select>
      </div>
      <button type="submit">Share</button>
    </form>
  </section>`;
}

/** The address a link opens in the console: the token rides in the fragment, which browsers never send to a server. */
const linkUrl = (token) => `${location.origin}/#/documents/shared/${encodeURIComponent(token)}`;

/** Share links (owner): made with a role and an expiry, shown once, listed by their last four characters, revoked at will. */
function Links({ doc }) {
  const [links, error, reload] = useLoad(() => allPages(`/v1/documents/${doc.id}/links?limit=100`), [doc.id]);
  const [fresh, setFresh] = useState(undefined);
  const [state, run] = useAction();
  const create = (e) => {
    e.preventDefault();
    const body = { role: new FormData(e.currentTarget).get('role'), expiresIn: expiresIn(e.currentTarget) };
    run(async () => {
      const link = await api('POST', `/v1/documents/${doc.id}/links`, { body });
      setFresh(linkUrl(link.token));
      reload();
    });
  };
  const revoke = (l) =>
    run(async () => {
      await api('DELETE', `/v1/documents/${doc.id}/links/${l.id}`);
      reload();
    }, `Link …${l.last4} revoked.`);
  return html`<section aria-labelledby="links-h">
    <h2 id="links-h">Share links</h2>
    <p class="muted">Anyone signed in who has the link can read the document (and comment, with a commenter link).</p>
    <${ErrorNote} error=${error} />
    ${fresh ? html`<${NewLinkAddress} address=${fresh} onDone=${() => setFresh(undefined)} />` : null}
    <ul class="links" aria-label="Links">
      ${(links?.data ?? []).map(
        (l) => html`<li key=${l.id}>
          <span><code>…${l.last4}</code> ${l.role} · ${linkState(l)}</span>
          ${l.revokedAt ? null : html`<button type="button" class="link" onClick=${() => revoke(l)} disabled=${state.busy}>Revoke link …${l.last4}</button>`}
        </li>`,
      )}
    </ul>
    <form class="card row" onSubmit=${create} aria-label="New share link">
      <${Field} label="Link role"><select name="role"><option value="viewer">Viewer</option><option value="commenter">Commenter</option></select></${Field}>
      <${ExpiryField} />
      <button type="submit" disabled=${state.busy}>Create link</button>
    </form>
    <${Status} state=${state} />
  </section>`;
}

/** A document opened through a share link: read-only, as the link's role allows. */
function SharedDocument({ token }) {
  const [doc, error] = useLoad(() => api('GET', '/v1/documents/shared', { headers: { 'x-share-token': token } }), [token]);
  if (error) {
    const why = error.code === 'link_revoked' ? 'This link was revoked by the document\'s owner.' : error.code === 'link_expired' ? 'This link has expired.' : error.status === 404 ? 'This link does not open any document.' : undefined;
    return html`<${Header} title="Shared document" />${why ? html`<p role="alert" class="error">${why}</p>` : html`<${ErrorNote} error=${error} />`}`;
  }
  if (!doc) return html`<p class="loading">Loading…</p>`;
  return html`<article class="document shared">
    <${Header} title=${doc.title}><span class="muted">shared with you as ${doc.role} · version ${doc.version}</span></${Header}>
    <div class="md" dangerouslySetInnerHTML=${{ __html: markdown(doc.body) }} />
  </article>`;
}

/** The document's files: each downloads; editors attach one of their files or remove one (the file itself stays). */
function Attachments({ doc }) {
  const canEdit = atLeast(doc.role, 'editor');
  const [list, error, reload] = useLoad(() => api('GET', `/v1/documents/${doc.id}/attachments`), [doc.id]);
  const [files] = useLoad(() => (canEdit ? allPages('/v1/files?limit=100') : Promise.resolve({ data: [] })), [doc.id]);
  const [state, run] = useAction();
  const attached = new Set((list?.data ?? []).map((a) => a.fileId));
  const choices = (files?.data ?? []).filter((f) => !attached.has(f.id));
  const attach = (e) => {
    e.preventDefault();
    const fileId = new FormData(e.currentTarget).get('fileId');
    if (!fileId) return;
    run(async () => {
      await api('POST', `/v1/documents/${doc.id}/attachments`, { body: { fileId } });
      reload();
    }, 'Attached.');
  };
  const remove = (a) =>
    run(async () => {
      await api('DELETE', `/v1/documents/${doc.id}/attachments/${a.id}`);
      reload();
    }, `Removed ${a.name}.`);
  return html`<section aria-labelledby="attachments-h">
    <h2 id="attachments-h">Attachments</h2>
    <${ErrorNote} error=${error} />
    ${list?.data?.length
      ? html`<ul class="links" aria-label="Attachments">
          ${list.data.map(
            (a) => html`<li key=${a.id}>
              <a href=${`/v1/documents/${doc.id}/attachments/${a.id}/content`} target="_blank" rel="noopener">${a.name}</a>
              ${canEdit ? html`<button type="button" class="link" onClick=${() => remove(a)} disabled=${state.busy}>Remove ${a.name}</button>` : null}
            </li>`,
          )}
        </ul>`
      : html`<p class="muted">None.</p>`}
    ${canEdit && choices.length
      ? html`<form class="row" onSubmit=${attach} aria-label="Attach a file">
          <${Field} label="One of your files"><select name="fileId">${choices.map((f) => html`<option value=${f.id}>${f.name}</option>`)}</select></${Field}>
          <button type="submit" disabled=${state.busy}>Attach</button>
        </form>`
      : null}
    <${Status} state=${state} />
  </section>`;
}

/**
 * Who else has the document open: a heartbeat while the page shows it
 * (viewing, or editing for editors), well within the time one counts; gone
 * when the page closes.
 */
function Presence({ doc, user }) {
  const [others, setOthers] = useState([]);
  useEffect(() => {
    let timer;
    let live = true;
    const state = atLeast(doc.role, 'editor') ? 'editing' : 'viewing';
    const beat = () =>
      api('POST', `/v1/documents/${doc.id}/presence`, { body: { state } }).then(
        (r) => {
          if (!live) return;
          setOthers(r.data.filter((p) => p.userId !== user?.id));
          timer = setTimeout(beat, Math.max(2, r.expiresIn / 2) * 1000);
        },
        () => live && (timer = setTimeout(beat, 10_000)),
      );
    beat();
    return () => {
      live = false;
      clearTimeout(timer);
      api('DELETE', `/v1/documents/${doc.id}/presence`).catch(() => {});
    };
  }, [doc.id]);
  if (!others.length) return null;
  const editing = others.filter((p) => p.state === 'editing').length;
  return html`<p class="presence" role="status">Also here: ${others.length} ${others.length === 1 ? 'other person' : 'others'}${editing ? ` (${editing} editing)` : ''}</p>`;
}

function Comments({ doc, body }) {
  // Every page: a thread is built from its replies' parentId, and a reply may come a page after its parent.
  const [comments, error, reload] = useLoad(() => allPages(`/v1/documents/${doc.id}/comments?limit=100`), [doc.id]);
  const [actionError, setActionError] = useState(undefined);
  const [replyTo, setReplyTo] = useState(undefined);
  const canComment = atLeast(doc.role, 'commenter');

  async function act(fn) {
    setActionError(undefined);
    try {
      await fn();
      reload();
      return true;
    } catch (err) {
      setActionError(err);
      return false;
    }
  }

  async function post(e, parentId) {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    const payload = parentId ? { body: f.get('body'), parentId } : { body: f.get('body'), quote: f.get('quote') };
    if (await act(() => api('POST', `/v1/documents/${doc.id}/comments`, { body: payload }))) {
      form.reset();
      setReplyTo(undefined);
    }
  }

  const all = comments?.data ?? [];
  const children = (id) => all.filter((c) => c.parentId === id);
  const Comment = ({ c }) => html`<li key=${c.id} class=${c.resolvedAt ? 'resolved' : ''}>
    <article class="comment">
      ${c.quote ? html`<blockquote>${c.quote}</blockquote>` : null}
      <p>${c.body}</p>
      <small class="muted">${when(c.createdAt)}${c.resolvedAt ? ' · resolved' : ''}</small>
      ${canComment
        ? html`<div class="row">
            <button type="button" class="link" onClick=${() => setReplyTo(c.id)}>Reply</button>
            ${!c.parentId ? html`<button type="button" class="link" onClick=${() => act(() => api('POST', `/v1/documents/${doc.id}/comments/${c.id}/${c.resolvedAt ? 'reopen' : 'resolve'}`))}>${c.resolvedAt ? 'Reopen' : 'Resolve'}</button>` : null}
          </div>`
        : null}
      ${replyTo === c.id
        ? html`<form class="reply" onSubmit=${(e) => post(e, c.id)}>
            <${Field} label="Reply"><textarea name="body" rows="2" required></textarea></${Field}>
            <button type="submit">Send reply</button>
            <button type="button" class="secondary" onClick=${() => setReplyTo(undefined)}>Cancel</button>
          </form>`
        : null}
    </article>
    ${children(c.id).length ? html`<ul>${children(c.id).map((r) => Comment({ c: r }))}</ul>` : null}
  </li>`;

  return html`<section aria-labelledby="comments-h">
    <h2 id="comments-h">Comments</h2>
    <${ErrorNote} error=${error || actionError} />
    ${all.length ? html`<ul class="comments">${children(null).map((c) => Comment({ c }))}</ul>` : html`<p class="muted">No comments yet.</p>`}
    ${canComment
      ? html`<form class="card" onSubmit=${(e) => post(e)} aria-label="New comment">
          <${Field} label="Passage" hint="A passage of the text, as it is written, that the comment is about"><input name="quote" required value=${(body ?? '').split('\n').find((l) => l.trim())?.trim() ?? ''} /></${Field}>
          <${Field} label="Comment"><textarea name="body" rows="3" required></textarea></${Field}>
          <button type="submit">Add comment</button>
        </form>`
      : null}
  </section>`;
}

function Document({ id, onChange, user }) {
  const [doc, error, reload] = useLoad(() => api('GET', `/v1/documents/${id}`), [id]);
  const [deleteError, setDeleteError] = useState(undefined);
  const [note, setNote] = useState('');
  if (error) return html`<${ErrorNote} error=${error} />`;
  if (!doc) return html`<p class="loading">Loading…</p>`;

  async function remove() {
    try {
      await api('DELETE', `/v1/documents/${id}`);
      onChange();
      go('/documents');
    } catch (err) {
      setDeleteError(err);
    }
  }

  const refresh = (said = '') => (setNote(said), reload(), onChange());
  async function template(on) {
    try {
      await api('PATCH', `/v1/documents/${id}`, { body: { isTemplate: on } });
      refresh(on ? 'Offered as a template' : 'No longer a template');
    } catch (err) {
      setDeleteError(err);
    }
  }
  return html`<article class="document">
    <${Header} title=${doc.title}>
      <span class="muted">${doc.role}${doc.isTemplate ? ' · template' : ''}</span>
      ${doc.role === 'owner'
        ? html`<label class="check"><input type="checkbox" checked=${doc.isTemplate} onChange=${(e) => template(e.currentTarget.checked)} /> Offer as a template</label>
            <button type="button" class="danger" onClick=${remove}>Delete document</button>`
        : null}
    </${Header}>
    <${ErrorNote} error=${deleteError} />
    <${Presence} doc=${doc} user=${user} />
    <${Editor} key=${`${doc.id}:${doc.version}`} doc=${doc} onSaved=${refresh} note=${note} />
    <div class="doc-side">
      <${Versions} doc=${doc} version=${doc.version} onRestored=${(n) => refresh(`Restored version ${n}`)} />
      <${Attachments} doc=${doc} />
      ${doc.role === 'owner' ? html`<${Shares} doc=${doc} /><${Links} doc=${doc} />` : null}
      <${Comments} key=${doc.version} doc=${doc} body=${doc.body} />
    </div>
  </article>`;
}

/** A share link's token from the URL; one with a malformed escape (%E0) is passed on as it is, to be refused as unknown. */
function shareToken(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

export function Documents({ route, user }) {
  const id = route.parts[1];
  const [filter, setFilter] = useState('all');
  const q = filter === 'mine' ? '&sharedWithMe=false' : filter === 'shared' ? '&sharedWithMe=true' : '';
  // A save, a new or deleted document, or back to the list: read again as far as the reader loaded.
  const docs = usePaged(`/v1/documents?limit=100${q}`);
  const reload = docs.refresh;
  useEffect(() => {
    if (!id) reload();
  }, [id]);

  return html`<div class="documents-page">
    <aside class="documents-list" aria-label="Documents">
      <a class="button" href="#/documents/new">New document</a>
      <${Field} label="Show">
        <select value=${filter} onChange=${(e) => setFilter(e.currentTarget.value)}>
          <option value="all">All</option><option value="mine">Mine</option><option value="shared">Shared with me</option>
        </select>
      </${Field}>
      <${ErrorNote} error=${docs.error} />
      <ul>
        ${(docs.items ?? []).map(
          (d) => html`<li key=${d.id}><a href=${`#/documents/${d.id}`} aria-current=${d.id === id ? 'page' : undefined}>${d.title}</a>${d.role !== 'owner' ? html` <small class="muted">(${d.role})</small>` : null}</li>`,
        )}
      </ul>
      ${docs.cursor ? html`<button type="button" class="link" disabled=${docs.busy} onClick=${docs.more}>More documents</button>` : null}
    </aside>
    <div class="documents-main">
      ${id === 'new'
        ? html`<${NewDocument} onCreated=${reload} />`
        : id === 'shared' && route.parts[2]
          ? html`<${SharedDocument} key=${route.parts[2]} token=${shareToken(route.parts[2])} />`
        : id
          ? html`<${Document} key=${id} id=${id} user=${user} onChange=${reload} />`
          : html`<${Header} title="Documents" /><p class="muted">${docs.items?.length ? 'Choose a document, or write a new one.' : 'No documents yet.'}</p>`}
    </div>
  </div>`;
}
