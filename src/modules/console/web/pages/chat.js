// Chat: the conversations (searchable), one conversation's branch with its
// project and model, and a composer whose answer streams in. Everything the
// page knows comes from the public API: the branch is re-read whenever the
// server's picture changed (a step stored, an answer finished) and only the
// text still streaming is held here.
import { useEffect, useRef, useState } from 'preact/hooks';
import DOMPurify from 'dompurify';
import { allPages, api, ApiError, events, stream } from '../lib/api.js';
import { html } from '../lib/html.js';
import { markdown } from '../lib/markdown.js';
import { go } from '../lib/router.js';
import { ExpiryField, expiresIn, linkState, NewLinkAddress } from '../lib/share-links.js';
import { ErrorNote, Status, useAction, useLoad, usePaged } from '../lib/ui.js';

const textOf = (m) => m.content.filter((p) => p.type === 'text').map((p) => p.text).join('\n\n');
const isImage = (type) => /^image\/(png|jpeg|gif|webp)$/.test(type ?? '');
const base = (id) => `/v1/conversations/${id}`;
/** Conversations per page of the list; more on request. */
const PAGE = 50;
/** How often a broken-off answer stream is taken up again before the page gives up, and the first pause (doubling). */
const RESUME_TRIES = 6;
const RESUME_DELAY_MS = 500;
/** Waits `ms`, or less if the page leaves the conversation. */
const pause = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), reject(signal.reason)), { once: true });
  });
/** A preview of a stored image: a small variant, made on first request (the thumbnail job may not have run yet). */
const previewUrl = (fileId) => `/v1/files/${fileId}/content?width=320&height=320&fit=inside`;

/** Rendered Markdown, with a copy button on each code block. */
function Markdown({ text }) {
  const box = useRef();
  const safe = markdown(text);
  useEffect(() => {
    for (const pre of box.current.querySelectorAll('pre')) {
      if (pre.querySelector('button.copy')) continue;
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'copy secondary';
      b.textContent = 'Copy';
      b.setAttribute('aria-label', 'Copy code');
      pre.prepend(b);
    }
  });
  function onClick(e) {
    const b = e.target.closest?.('button.copy');
    if (!b) return;
    const code = (b.parentElement.querySelector('code')?.textContent ?? '').replace(/\n$/, '');
    navigator.clipboard?.writeText(code).then(
      () => (b.textContent = 'Copied'),
      () => (b.textContent = 'Copy failed'),
    );
  }
  return html`<div class="md" ref=${box} onClick=${onClick} dangerouslySetInnerHTML=${{ __html: safe }} />`;
}

/** A thumb (Feather's, MIT): drawn, not an emoji, so it shows where no emoji font is installed. */
const Thumb = ({ down }) => html`<svg class="thumb" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">
  <g transform=${down ? 'rotate(180 12 12)' : undefined}><path d="M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3" /></g>
</svg>`;

/** ‹ 2 / 3 › between a message and its alternatives. */
function Branches({ m, onSelect, busy }) {
  if (!m.siblingIds || m.siblingIds.length < 2) return null;
  const i = m.siblingIndex;
  return html`<span class="branches" role="group" aria-label="Branches">
    <button type="button" class="secondary" aria-label="Previous branch" disabled=${busy || i <= 0} onClick=${() => onSelect(m.siblingIds[i - 1])}>‹</button>
    <span>${i + 1} / ${m.siblingIds.length}</span>
    <button type="button" class="secondary" aria-label="Next branch" disabled=${busy || i >= m.siblingIds.length - 1} onClick=${() => onSelect(m.siblingIds[i + 1])}>›</button>
  </span>`;
}

function Files({ parts }) {
  const files = parts.filter((p) => p.type === 'file');
  if (!files.length) return null;
  return html`<ul class="files">
    ${files.map((f) =>
      html`<li key=${f.fileId}>
        ${f.deleted ? html`<span class="muted">${f.name} (deleted)</span>` : isImage(f.mimeType) ? html`<img src=${previewUrl(f.fileId)} alt=${f.name} loading="lazy" />` : html`<a href=${`/v1/files/${f.fileId}/content`} target="_blank" rel="noopener">${f.name}</a>`}
      </li>`,
    )}
  </ul>`;
}

function Citations({ list }) {
  if (!list?.length) return null;
  return html`<details class="citations">
    <summary>Sources (${list.length})</summary>
    <ol>${list.map((c) => html`<li key=${c.n} value=${c.n}><strong>${c.title}</strong> <span class="muted">${c.excerpt}</span></li>`)}</ol>
  </details>`;
}

const STATUS = { ok: 'done', error: 'failed', pending_approval: 'waiting for your approval', approved: 'approved, running', denied: 'denied', cancelled: 'cancelled', running: 'running' };

/** One tool call: its name, arguments, status and result; Approve/Deny while it waits. */
function ToolCall({ call, onDecide }) {
  return html`<div class="tool-call" data-status=${call.status}>
    <p><span class="tool-name">${call.name}</span> <code>${call.arguments}</code> <span class="muted">${STATUS[call.status] ?? call.status}</span></p>
    ${call.status === 'pending_approval' && onDecide
      ? html`<div class="actions">
          <button type="button" onClick=${() => onDecide(call.callId, true)} aria-label=${`Approve ${call.name}`}>Approve</button>
          <button type="button" class="secondary" onClick=${() => onDecide(call.callId, false)} aria-label=${`Deny ${call.name}`}>Deny</button>
        </div>`
      : null}
    ${call.result ? html`<details><summary>Result</summary><pre>${call.result}</pre></details>` : null}
    ${call.error ? html`<p class="error">${call.error.message}</p>` : null}
  </div>`;
}

function Message({ m, live, busy, actions }) {
  const [editing, setEditing] = useState(false);
  const edit = useRef();
  if (m.role === 'tool') {
    const part = m.content.find((p) => p.type === 'tool_result');
    return part ? html`<div class="msg tool"><${ToolCall} call=${part} onDecide=${actions.decide} /></div>` : null;
  }
  const streaming = m.status === 'streaming';
  const text = live ? live.text : textOf(m);
  if (m.role === 'user') {
    async function save(e) {
      e.preventDefault();
      const value = edit.current.value.trim();
      const files = m.content.filter((p) => p.type === 'file' && !p.deleted).map((p) => ({ type: 'file', fileId: p.fileId }));
      if (!value && !files.length) return;
      setEditing(false);
      await actions.send(files.length ? [...(value ? [{ type: 'text', text: value }] : []), ...files] : value, m.parentId);
    }
    // The actions sit beside the message, not in it: the message holds only what was said.
    return html`<div class="turn user"><article class="msg user" data-status=${m.status}>
      <${Files} parts=${m.content} />
      ${editing
        ? html`<form class="edit" onSubmit=${save}>
            <label class="sr-only" for=${`edit-${m.id}`}>Edit message</label>
            <textarea id=${`edit-${m.id}`} ref=${edit} rows="3" defaultValue=${text}></textarea>
            <div class="actions"><button type="submit">Save and send</button><button type="button" class="secondary" onClick=${() => setEditing(false)}>Cancel</button></div>
          </form>`
        : html`<p class="plain">${text}</p>`}
      </article>
      <footer class="msg-actions">
        <${Branches} m=${m} busy=${busy} onSelect=${actions.select} />
        ${editing ? null : html`<button type="button" class="link" disabled=${busy} onClick=${() => setEditing(true)}>Edit</button>`}
      </footer>
    </div>`;
  }
  // An assistant message: a step that called tools, or an answer.
  const calls = m.content.filter((p) => p.type === 'tool_call');
  const rating = m.feedback?.rating;
  const answered = !streaming && !calls.length;
  // Paused for approvals with nothing said yet: the pending calls above say it all.
  if (streaming && !text && m.finishReason === 'awaiting_approval' && !live?.calls.length) return null;
  return html`<article class="msg assistant" data-status=${m.status} aria-busy=${streaming}>
    ${text || streaming ? html`<${Markdown} text=${text} />` : null}
    ${calls.length ? html`<p class="muted calls">Calling ${calls.map((c) => c.name).join(', ')}</p>` : null}
    ${live?.calls.map((c) => html`<${ToolCall} key=${c.id} call=${{ ...c, callId: c.id }} />`)}
    <${Citations} list=${live?.citations ?? m.citations} />
    ${m.error ? html`<p class="error">${m.error.message}</p>` : null}
    ${m.status === 'cancelled' ? html`<p class="muted">Stopped.</p>` : null}
    ${answered
      ? html`<footer class="msg-actions">
          <${Branches} m=${m} busy=${busy} onSelect=${actions.select} />
          <button type="button" class="secondary" aria-label="Good answer" aria-pressed=${rating === 'up'} onClick=${() => actions.rate(m, 'up')}><${Thumb} /></button>
          <button type="button" class="secondary" aria-label="Bad answer" aria-pressed=${rating === 'down'} onClick=${() => actions.rate(m, 'down')}><${Thumb} down /></button>
          <button type="button" class="secondary" disabled=${busy} onClick=${() => actions.regenerate(m)}>Regenerate</button>
          <button type="button" class="secondary" disabled=${busy} onClick=${() => actions.fork(m)} title="A new conversation that goes on from this answer">Fork</button>
          ${m.model ? html`<span class="muted model">${m.model}</span>` : null}
        </footer>`
      : null}
  </article>`;
}

/** The address a link opens in the console: the token rides in the fragment, which browsers never send to a server. */
const shareUrl = (token) => `${location.origin}/#/shared/conversation/${encodeURIComponent(token)}`;

/**
 * The conversation's share links: a read-only snapshot of the current branch for anyone with the address (no
 * sign-in), shown once when made, listed by its last four characters and revoked in place.
 */
function Shares({ id }) {
  const [links, error, reload] = useLoad(() => allPages(`${base(id)}/shares?limit=100`), [id]);
  const [fresh, setFresh] = useState(undefined);
  const [state, run] = useAction();
  const create = (e) => {
    e.preventDefault();
    const body = { expiresIn: expiresIn(e.currentTarget) };
    run(async () => {
      const link = await api('POST', `${base(id)}/shares`, { body });
      setFresh(shareUrl(link.token));
      reload();
    });
  };
  const revoke = (l) =>
    run(async () => {
      await api('DELETE', `${base(id)}/shares/${l.id}`);
      reload();
    }, `Link …${l.last4} revoked.`);
  return html`<section class="card shares" aria-labelledby="shares-h">
    <h2 id="shares-h">Share links</h2>
    <p class="muted">Anyone with the link, signed in or not, can read this conversation up to its latest message now; later messages are not shown.</p>
    <${ErrorNote} error=${error} />
    ${fresh ? html`<${NewLinkAddress} address=${fresh} onDone=${() => setFresh(undefined)} />` : null}
    <ul class="links" aria-label="Links">
      ${(links?.data ?? []).map(
        (l) => html`<li key=${l.id}>
          <span><code>…${l.last4}</code> ${linkState(l)}</span>
          ${l.revokedAt ? null : html`<button type="button" class="link" onClick=${() => revoke(l)} disabled=${state.busy}>Revoke link …${l.last4}</button>`}
        </li>`,
      )}
    </ul>
    <form class="row" onSubmit=${create} aria-label="New share link">
      <${ExpiryField} />
      <button type="submit" disabled=${state.busy}>Create link</button>
    </form>
    <${Status} state=${state} />
  </section>`;
}

/** Files picked or dropped for the next message: previewed at once, uploaded in the background. */
function useAttachments(conversationId) {
  const [items, setItems] = useState([]);
  const update = (key, patch) => setItems((xs) => xs.map((x) => (x.key === key ? { ...x, ...patch } : x)));
  function add(fileList) {
    for (const file of fileList) {
      const key = `${Date.now()}-${Math.random()}`;
      const item = { key, name: file.name, type: file.type, preview: isImage(file.type) ? URL.createObjectURL(file) : undefined, status: 'uploading' };
      const form = new FormData();
      form.append('conversationId', conversationId);
      form.append('file', file, file.name);
      item.upload = api('POST', '/v1/files', { body: form }).then(
        (f) => (update(key, { status: 'ready', fileId: f.id }), f.id),
        (error) => (update(key, { status: 'failed', error }), undefined),
      );
      setItems((xs) => [...xs, item]);
    }
  }
  function remove(key) {
    setItems((xs) => {
      const x = xs.find((i) => i.key === key);
      if (x?.preview) URL.revokeObjectURL(x.preview);
      return xs.filter((i) => i.key !== key);
    });
  }
  function clear() {
    items.forEach((x) => x.preview && URL.revokeObjectURL(x.preview));
    setItems([]);
  }
  useEffect(() => () => items.forEach((x) => x.preview && URL.revokeObjectURL(x.preview)), []);
  return { items, add, remove, clear };
}

function Conversation({ id, models, projects, onChanged }) {
  const [conv, setConv] = useState(undefined);
  const [messages, setMessages] = useState([]);
  const [live, setLive] = useState(undefined);
  const [error, setError] = useState(undefined);
  const [busy, setBusy] = useState(false);
  const [dragging, setDragging] = useState(false);
  const [sharing, setSharing] = useState(false);
  const input = useRef();
  const fileInput = useRef();
  const end = useRef();
  const aborter = useRef(new AbortController());
  const attachments = useAttachments(id);

  const titled = useRef(true);
  useEffect(() => void (titled.current = !!conv?.title), [conv]);

  /** The first exchange's title is written in the background: look again for a few seconds. */
  function watchTitle(tries = 0) {
    const { signal } = aborter.current;
    setTimeout(() => {
      if (signal.aborted) return;
      api('GET', base(id), { signal }).then((c) => {
        setConv(c);
        if (c.title) onChanged();
        else if (tries < 5) watchTitle(tries + 1);
      }, () => {});
    }, 1000);
  }

  const reload = () =>
    api('GET', `${base(id)}/messages`, { signal: aborter.current.signal }).then((branch) => setMessages(branch.data));

  /**
   * Follows an answer's events to their end: the text as it streams, tool
   * calls as they run; the branch is re-read when the server stored something.
   * A stream that breaks off before the end (a dropped connection, a server
   * restarting) is taken up again where it stopped: the answer goes on on the
   * server, so the branch is re-read and, while it still streams, its events
   * are followed from the next offset (`…/stream?offset=N`), the text so far kept.
   */
  async function follow(res, answerId) {
    const { signal } = aborter.current;
    let state = { id: answerId, text: '', calls: [], citations: undefined };
    const set = (patch) => setLive((state = { ...state, ...patch }));
    if (answerId) set({});
    /** The offset of the next event, where a broken-off stream resumes. */
    let next = 0;
    let ended = false;

    async function handle(e) {
      if (e.event === 'message.created') {
        set({ id: e.data.assistantMessageId });
        await reload();
      } else if (e.event === 'citations') set({ citations: e.data.citations });
      else if (e.event === 'delta') set({ text: state.text + e.data.text });
      // A step's text belongs to the step's message (in the branch from now on); the answer starts over.
      else if (e.event === 'tool.call') set({ text: '', calls: [...state.calls.filter((c) => c.id !== e.data.id), { ...e.data, status: 'running' }] });
      else if (e.event === 'tool.result') {
        set({ calls: state.calls.filter((c) => c.id !== e.data.id) });
        await reload();
      } else if (e.event === 'tool.approval_required') {
        set({ calls: [] });
        await reload();
        setBusy(false);
      } else if (e.event === 'message.completed' || e.event === 'error') {
        if (e.event === 'error') setError(new Error(e.data.message));
        ended = true;
        await reload();
        setLive(undefined);
        onChanged();
        if (!titled.current) watchTitle();
      }
    }

    /** The rest of the answer after a break, or null when it ended meanwhile (the branch re-read has it all). */
    async function reopen() {
      const branch = await api('GET', `${base(id)}/messages`, { signal });
      setMessages(branch.data);
      const open = state.id ? branch.data.find((m) => m.id === state.id) : branch.data.findLast((m) => m.role === 'assistant' && m.status === 'streaming');
      if (open?.status !== 'streaming') return null;
      if (!state.id) set({ id: open.id });
      const rest = await stream('GET', `${base(id)}/messages/${open.id}/stream?offset=${next}`, { signal });
      return rest.status === 204 ? null : rest;
    }

    let failures = 0;
    try {
      for (;;) {
        try {
          for await (const e of events(res)) {
            if (e.id !== undefined) next = e.id + 1;
            failures = 0;
            await handle(e);
          }
        } catch (err) {
          if (err.name === 'AbortError') throw err;
        }
        if (ended) return;
        // Broken off: try again, a little later each time, while the page is open.
        for (res = undefined; !res; ) {
          if (++failures > RESUME_TRIES) throw new Error('The connection to the server was lost while the answer streamed. Reload to see it.');
          await pause(Math.min(RESUME_DELAY_MS * 2 ** (failures - 1), 8000), signal);
          try {
            res = await reopen();
          } catch (err) {
            if (err.name === 'AbortError' || err instanceof ApiError) throw err;
          }
          if (res === null) {
            ended = true;
            onChanged();
            if (!titled.current) watchTitle();
            return;
          }
        }
      }
    } catch (err) {
      if (err.name !== 'AbortError') setError(err);
    } finally {
      // The text so far stays shown unless the branch has the answer now.
      if (ended) setLive((l) => (l?.id === state.id ? undefined : l));
    }
  }

  async function run(open) {
    setBusy(true);
    setError(undefined);
    try {
      await follow(await open());
    } catch (err) {
      if (err.name !== 'AbortError') setError(err);
    } finally {
      if (!aborter.current.signal.aborted) setBusy(false);
    }
  }

  useEffect(() => {
    const { signal } = aborter.current;
    api('GET', base(id), { signal }).then(setConv, (err) => err.name !== 'AbortError' && setError(err));
    api('GET', `${base(id)}/messages`, { signal }).then(async (branch) => {
      setMessages(branch.data);
      // An answer still streaming (a reload mid-answer, or one waiting for approvals): follow it from its first event.
      const open = branch.data.findLast((m) => m.status === 'streaming' && m.role === 'assistant');
      if (open) {
        setBusy(open.finishReason !== 'awaiting_approval');
        await follow(await stream('GET', `${base(id)}/messages/${open.id}/stream?offset=0`, { signal }), open.id);
        if (!signal.aborted) setBusy(false);
      }
    }, (err) => err.name !== 'AbortError' && setError(err));
    return () => aborter.current.abort();
  }, [id]);

  useEffect(() => end.current?.scrollIntoView?.({ block: 'end' }), [messages.length, live?.text.length]);

  /** Posts a message and follows its answer; `accepted` runs once the server took it (a refusal keeps the draft). */
  async function send(content, parentId, accepted = () => {}) {
    const body = { content };
    if (parentId !== undefined) body.parentId = parentId;
    await run(async () => {
      const res = await stream('POST', `${base(id)}/messages`, { body, signal: aborter.current.signal });
      accepted();
      return res;
    });
  }

  async function submit(e) {
    e.preventDefault();
    const text = input.current.value.trim();
    const pending = attachments.items;
    if (!text && !pending.length) return;
    const sent = () => {
      input.current.value = '';
      attachments.clear();
    };
    if (!pending.length) return send(text, undefined, sent);
    setBusy(true);
    const ids = await Promise.all(pending.map((x) => x.upload));
    if (ids.some((x) => !x)) {
      setBusy(false);
      return setError(new Error('An attachment could not be uploaded: remove it and try again.'));
    }
    return send([...(text ? [{ type: 'text', text }] : []), ...ids.map((fileId) => ({ type: 'file', fileId }))], undefined, sent);
  }

  const actions = {
    send,
    select: (messageId) => api('POST', `${base(id)}/messages/${messageId}/select`, { body: {} }).then((b) => setMessages(b.data), setError),
    regenerate: (m) => run(() => stream('POST', `${base(id)}/messages/${m.id}/regenerate`, { body: {}, signal: aborter.current.signal })),
    // A new conversation with the branch up to this answer; opened, and listed first.
    fork: (m) =>
      api('POST', `${base(id)}/fork`, { body: { messageId: m.id } }).then((c) => {
        onChanged();
        go(`/chat/${c.id}`);
      }, setError),
    async rate(m, rating) {
      try {
        if (m.feedback?.rating === rating) await api('DELETE', `${base(id)}/messages/${m.id}/feedback`);
        else await api('PUT', `${base(id)}/messages/${m.id}/feedback`, { body: { rating } });
        await reload();
      } catch (err) {
        setError(err);
      }
    },
    async decide(callId, approve) {
      const waiting = messages.findLast((m) => m.role === 'assistant' && m.finishReason === 'awaiting_approval');
      if (!waiting) return;
      try {
        setBusy(true);
        await api('POST', `${base(id)}/messages/${waiting.id}/tool-calls/${encodeURIComponent(callId)}/approval`, { body: { approve } });
        // The stream we follow stays open and carries the rest; re-read to show the decision.
        await reload();
      } catch (err) {
        setError(err);
        setBusy(false);
      }
    },
  };

  async function stop() {
    const open = live?.id ?? messages.findLast((m) => m.role === 'assistant' && m.status === 'streaming')?.id;
    if (open) await api('POST', `${base(id)}/messages/${open}/cancel`, { body: {} }).catch(setError);
  }

  async function patch(fields) {
    try {
      setConv(await api('PATCH', base(id), { body: fields }));
      onChanged();
    } catch (err) {
      setError(err);
    }
  }

  function drop(e) {
    e.preventDefault();
    setDragging(false);
    if (e.dataTransfer?.files?.length) attachments.add(e.dataTransfer.files);
  }

  const streamingId = live?.id;
  const awaiting = messages.some((m) => m.role === 'assistant' && m.finishReason === 'awaiting_approval');
  return html`<section class="conversation" aria-labelledby="conversation-title">
    <header class="conversation-header">
      <h1 id="conversation-title">${conv?.title || 'New chat'}</h1>
      <label class="picker"><span>Project</span>
        <select value=${conv?.projectId ?? ''} disabled=${!conv} onChange=${(e) => patch({ projectId: e.currentTarget.value || null })}>
          <option value="">No project</option>
          ${(projects ?? []).map((p) => html`<option value=${p.id}>${p.name}</option>`)}
        </select>
      </label>
      <label class="picker"><span>Model</span>
        <select value=${conv?.model ?? ''} disabled=${!conv} onChange=${(e) => patch({ model: e.currentTarget.value || null })}>
          <option value="">Default${models?.defaultModel ? ` (${models.defaultModel})` : ''}</option>
          ${(models?.data ?? []).map((m) => html`<option value=${m.id}>${m.id}${m.vision ? ' · sees images' : ''}</option>`)}
        </select>
      </label>
      <button type="button" class="secondary" aria-expanded=${sharing} disabled=${!conv} onClick=${() => setSharing((x) => !x)}>Share</button>
    </header>
    ${sharing ? html`<${Shares} id=${id} />` : null}
    <div class="messages" aria-live="polite">
      ${messages.map((m) => html`<${Message} key=${m.id} m=${m} live=${m.id === streamingId ? live : undefined} busy=${busy || awaiting} actions=${actions} />`)}
      <div ref=${end}></div>
    </div>
    <${ErrorNote} error=${error} />
    <form class=${`composer${dragging ? ' dragging' : ''}`} onSubmit=${submit}
      onDragOver=${(e) => (e.preventDefault(), setDragging(true))} onDragLeave=${() => setDragging(false)} onDrop=${drop}>
      ${attachments.items.length
        ? html`<ul class="attachments" aria-label="Attachments">
            ${attachments.items.map(
              (x) => html`<li key=${x.key} data-status=${x.status}>
                ${x.preview ? html`<img src=${x.preview} alt=${`Preview of ${x.name}`} />` : html`<span class="file-name">${x.name}</span>`}
                ${x.status === 'uploading' ? html`<span class="muted">Uploading…</span>` : x.status === 'failed' ? html`<span class="error">${x.error?.message}</span>` : null}
                <button type="button" class="link" aria-label=${`Remove ${x.name}`} onClick=${() => attachments.remove(x.key)}>Remove</button>
              </li>`,
            )}
          </ul>`
        : null}
      <label class="sr-only" for="composer-input">Message</label>
      <textarea id="composer-input" ref=${input} rows="3" placeholder="Send a message (drop files here)" disabled=${busy}
        onKeyDown=${(e) => e.key === 'Enter' && !e.shiftKey && (e.preventDefault(), e.currentTarget.form.requestSubmit())}></textarea>
      <div class="composer-actions">
        <label class="attach secondary"><span>Attach files</span>
          <input type="file" multiple ref=${fileInput} class="sr-only" onChange=${(e) => (attachments.add(e.currentTarget.files), (e.currentTarget.value = ''))} />
        </label>
        ${streamingId && busy ? html`<button type="button" class="danger" onClick=${stop}>Stop</button>` : html`<button type="submit" disabled=${busy || awaiting}>Send</button>`}
      </div>
    </form>
  </section>`;
}

/** More of a paged list, while there is more. */
const More = ({ list, label }) =>
  list.cursor ? html`<li><button type="button" class="link" disabled=${list.busy} onClick=${list.more}>${label}</button></li>` : null;

/** The conversations, or the search results while there is a query. */
function Sidebar({ id, list, onCreate }) {
  const [q, setQ] = useState('');
  const [query, setQuery] = useState('');
  useEffect(() => {
    // A short pause while typing: one search per word, not per key.
    const t = setTimeout(() => setQuery(q.trim()), 250);
    return () => clearTimeout(t);
  }, [q]);
  const hits = usePaged(query ? `/v1/search?q=${encodeURIComponent(query)}&limit=20` : null);
  const searching = Boolean(q.trim());
  return html`<aside class="conversations" aria-label="Conversations">
    <button type="button" onClick=${onCreate}>New chat</button>
    <form role="search" onSubmit=${(e) => e.preventDefault()}>
      <label class="sr-only" for="chat-search">Search conversations</label>
      <input id="chat-search" type="search" placeholder="Search" value=${q} onInput=${(e) => setQ(e.currentTarget.value)} />
    </form>
    <${ErrorNote} error=${searching ? hits.error : list.error} />
    ${searching
      ? hits.items
        ? html`<ul class="search-results" aria-label="Search results">
            ${hits.items.length ? null : html`<li class="muted">No matches.</li>`}
            ${hits.items.map(
              (h) => html`<li key=${`${h.conversationId}-${h.messageId}`}>
                <a href=${`#/chat/${h.conversationId}`} aria-current=${h.conversationId === id ? 'page' : undefined}>
                  <strong>${h.title || 'New chat'}</strong>
                  <span class="snippet" dangerouslySetInnerHTML=${{ __html: DOMPurify.sanitize(h.snippet, { ALLOWED_TAGS: ['mark'], ALLOWED_ATTR: [] }) }}></span>
                </a>
              </li>`,
            )}
            <${More} list=${hits} label="More results" />
          </ul>`
        : null
      : html`<ul>
          ${(list.items ?? []).map((c) => html`<li key=${c.id}><a href=${`#/chat/${c.id}`} aria-current=${c.id === id ? 'page' : undefined}>${c.title || 'New chat'}</a></li>`)}
          <${More} list=${list} label="Older conversations" />
        </ul>`}
  </aside>`;
}

export function Chat({ route }) {
  const id = route.parts[1];
  // Opening another conversation keeps the pages loaded; a change (a new chat, an answer, a title) reads the first page again over them.
  const list = usePaged(`/v1/conversations?limit=${PAGE}`);
  const [models] = useLoad(() => api('GET', '/v1/ai/models').catch(() => ({ data: [] })), []);
  const [projects] = useLoad(() => allPages('/v1/projects?limit=100').catch(() => ({ data: [] })), []);
  async function create() {
    const c = await api('POST', '/v1/conversations', { body: {} });
    list.refresh();
    go(`/chat/${c.id}`);
  }
  return html`<div class="chat">
    <${Sidebar} id=${id} list=${list} onCreate=${create} />
    ${id
      ? html`<${Conversation} id=${id} key=${id} models=${models} projects=${projects?.data} onChanged=${list.refresh} />`
      : html`<section class="empty"><p>Start a new chat, or pick one.</p></section>`}
  </div>`;
}
