// Chat: the conversations, one conversation's branch, and a composer whose answer streams in.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, events, stream } from '../lib/api.js';
import { html } from '../lib/html.js';
import { markdown } from '../lib/markdown.js';
import { go } from '../lib/router.js';
import { ErrorNote, useLoad } from '../lib/ui.js';

const textOf = (m) => m.content.filter((p) => p.type === 'text').map((p) => p.text).join('\n\n');

function Message({ m }) {
  const body = m.role === 'assistant' ? html`<div class="md" dangerouslySetInnerHTML=${{ __html: markdown(textOf(m)) }} />` : html`<p class="plain">${textOf(m)}</p>`;
  return html`<article class=${`msg ${m.role}`} data-status=${m.status} aria-busy=${m.status === 'streaming'}>
    ${body}
    ${m.error ? html`<p class="error">${m.error.message}</p>` : null}
  </article>`;
}

function Conversation({ id }) {
  const [messages, setMessages] = useState([]);
  const [error, setError] = useState(undefined);
  const [busy, setBusy] = useState(false);
  const input = useRef();

  async function follow(res, assistantId) {
    let text = '';
    for await (const e of events(res)) {
      if (e.event === 'message.created') assistantId = e.data.assistantMessageId;
      if (e.event === 'delta') {
        text += e.data.text;
        setMessages((ms) => ms.map((m) => (m.id === assistantId ? { ...m, content: [{ type: 'text', text }] } : m)));
      }
      if (e.event === 'message.completed') setMessages((ms) => ms.map((m) => (m.id === e.data.message.id ? e.data.message : m)));
      if (e.event === 'error') setError(new Error(e.data.message));
    }
  }

  useEffect(() => {
    let live = true;
    setMessages([]);
    api('GET', `/v1/conversations/${id}/messages`).then(async (branch) => {
      if (!live) return;
      setMessages(branch.data);
      // An answer still streaming (a reload mid-answer): follow it from the start.
      const open = branch.data.find((m) => m.status === 'streaming' && m.role === 'assistant');
      if (open) await follow(await stream('GET', `/v1/conversations/${id}/messages/${open.id}/stream`), open.id);
    }, setError);
    return () => {
      live = false;
    };
  }, [id]);

  async function send(e) {
    e.preventDefault();
    const content = input.current.value.trim();
    if (!content) return;
    setBusy(true);
    setError(undefined);
    try {
      const res = await stream('POST', `/v1/conversations/${id}/messages`, { body: { content } });
      input.current.value = '';
      let assistantId;
      const reader = events(res);
      const first = await reader.next();
      if (!first.done && first.value.event === 'message.created') {
        const { userMessageId, assistantMessageId } = first.value.data;
        assistantId = assistantMessageId;
        setMessages((ms) => [...ms, { id: userMessageId, role: 'user', status: 'complete', content: [{ type: 'text', text: content }] }, { id: assistantMessageId, role: 'assistant', status: 'streaming', content: [] }]);
      }
      let text = '';
      for await (const ev of { [Symbol.asyncIterator]: () => reader }) {
        if (ev.event === 'delta') {
          text += ev.data.text;
          setMessages((ms) => ms.map((m) => (m.id === assistantId ? { ...m, content: [{ type: 'text', text }] } : m)));
        }
        if (ev.event === 'message.completed') setMessages((ms) => ms.map((m) => (m.id === ev.data.message.id ? ev.data.message : m)));
        if (ev.event === 'error') setError(new Error(ev.data.message));
      }
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return html`<section class="conversation">
    <div class="messages" aria-live="polite">${messages.map((m) => html`<${Message} key=${m.id} m=${m} />`)}</div>
    <${ErrorNote} error=${error} />
    <form class="composer" onSubmit=${send}>
      <label class="sr-only" for="composer-input">Message</label>
      <textarea id="composer-input" ref=${input} rows="3" placeholder="Send a message" disabled=${busy}
        onKeyDown=${(e) => e.key === 'Enter' && !e.shiftKey && (e.preventDefault(), e.currentTarget.form.requestSubmit())}></textarea>
      <button type="submit" disabled=${busy}>Send</button>
    </form>
  </section>`;
}

export function Chat({ route }) {
  const id = route.parts[1];
  const [list, error, reload] = useLoad(() => api('GET', '/v1/conversations?limit=50'), [id]);
  async function create() {
    const c = await api('POST', '/v1/conversations', { body: {} });
    reload();
    go(`/chat/${c.id}`);
  }
  return html`<div class="chat">
    <aside class="conversations" aria-label="Conversations">
      <button type="button" onClick=${create}>New chat</button>
      <${ErrorNote} error=${error} />
      <ul>${(list?.data ?? []).map((c) => html`<li><a href=${`#/chat/${c.id}`} aria-current=${c.id === id ? 'page' : undefined}>${c.title || 'New chat'}</a></li>`)}</ul>
    </aside>
    ${id ? html`<${Conversation} id=${id} key=${id} />` : html`<section class="empty"><p>Start a new chat, or pick one.</p></section>`}
  </div>`;
}
