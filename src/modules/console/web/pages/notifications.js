// Notifications: the in-app inbox, newest first, a page at a time; new ones
// arrive live through the bell's socket; mark one or all read.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { onNotificationEvent, refreshUnread } from '../lib/bell.js';
import { when } from '../lib/format.js';
import { html } from '../lib/html.js';
import { ErrorNote, Header } from '../lib/ui.js';

const PAGE = 20;

/**
 * A notification's link: an http(s) URL opens in a new tab; a path names a
 * thing of the API (`/conversations/<id>`), opened on its console page when
 * there is one.
 */
function Link({ link }) {
  if (!link) return null;
  if (/^https?:\/\//.test(link)) return html`<a href=${link} target="_blank" rel="noopener noreferrer">Open</a>`;
  const conversation = /^\/conversations\/([\w-]+)$/.exec(link);
  if (conversation) return html`<a href=${`#/chat/${conversation[1]}`}>Open</a>`;
  return null;
}

function Item({ n, onRead, onDelete }) {
  const unread = !n.readAt;
  return html`<li class=${`notification${unread ? ' unread' : ''}`} data-priority=${n.priority}>
    <div class="notification-text">
      <h2>${unread ? html`<span class="sr-only">Unread: </span>` : null}${n.title}</h2>
      ${n.body ? html`<p>${n.body}</p>` : null}
      <p class="muted"><small>${n.category} · <time datetime=${n.createdAt}>${when(n.createdAt)}</time></small></p>
    </div>
    <div class="notification-actions">
      <${Link} link=${n.link} />
      ${unread ? html`<button type="button" class="secondary" onClick=${() => onRead(n)} aria-label=${`Mark “${n.title}” read`}>Mark read</button>` : null}
      <button type="button" class="link" onClick=${() => onDelete(n)} aria-label=${`Delete “${n.title}”`}>Delete</button>
    </div>
  </li>`;
}

export function Notifications() {
  const [items, setItems] = useState(undefined);
  const [cursor, setCursor] = useState(null);
  const [unreadOnly, setUnreadOnly] = useState(false);
  const [error, setError] = useState(undefined);
  const [busy, setBusy] = useState(false);

  async function load(from) {
    setBusy(true);
    setError(undefined);
    try {
      const q = new URLSearchParams({ limit: String(PAGE) });
      if (from) q.set('cursor', from);
      if (unreadOnly) q.set('unread', 'true');
      const page = await api('GET', `/v1/notifications?${q}`);
      setItems((prev) => (from ? [...(prev ?? []), ...page.data] : page.data));
      setCursor(page.nextCursor);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  useEffect(() => {
    load(null);
  }, [unreadOnly]);

  // Live: a new one goes on top; a read elsewhere (another tab, read-all) shows here too.
  useEffect(
    () =>
      onNotificationEvent((event) => {
        const p = event.payload;
        if (event.type === 'notification.created' && p.notification) {
          setItems((prev) => (prev && !prev.some((n) => n.id === p.notification.id) ? [p.notification, ...prev] : prev));
        }
        if (event.type === 'notification.read') {
          const at = event.occurredAt ?? new Date().toISOString();
          setItems((prev) => prev?.map((n) => (!n.readAt && (!p.ids || p.ids.includes(n.id)) ? { ...n, readAt: at } : n)));
        }
      }),
    [],
  );

  async function act(fn) {
    setError(undefined);
    try {
      await fn();
      await refreshUnread();
    } catch (err) {
      setError(err);
    }
  }

  const markRead = (n) =>
    act(async () => {
      await api('POST', `/v1/notifications/${n.id}/read`, { body: {} });
      setItems((prev) => prev.map((x) => (x.id === n.id ? { ...x, readAt: new Date().toISOString() } : x)));
    });
  const markAll = () =>
    act(async () => {
      await api('POST', '/v1/notifications/read-all', { body: {} });
      const at = new Date().toISOString();
      setItems((prev) => prev.map((x) => (x.readAt ? x : { ...x, readAt: at })));
    });
  const remove = (n) =>
    act(async () => {
      await api('DELETE', `/v1/notifications/${n.id}`);
      setItems((prev) => prev.filter((x) => x.id !== n.id));
    });

  const anyUnread = items?.some((n) => !n.readAt);
  return html`
    <${Header} title="Notifications">
      <label class="inline"><input type="checkbox" checked=${unreadOnly} onChange=${(e) => setUnreadOnly(e.currentTarget.checked)} /> Unread only</label>
      <button type="button" class="secondary" onClick=${markAll} disabled=${!anyUnread}>Mark all read</button>
      <a href="#/settings/notifications">Preferences</a>
    </${Header}>
    <${ErrorNote} error=${error} />
    ${items === undefined
      ? html`<p class="muted">Loading…</p>`
      : items.length === 0
        ? html`<p class="muted">${unreadOnly ? 'Nothing unread.' : 'No notifications yet.'}</p>`
        : html`<ul class="notifications" aria-label="Notifications">
            ${items.map((n) => html`<${Item} key=${n.id} n=${n} onRead=${markRead} onDelete=${remove} />`)}
          </ul>`}
    ${cursor ? html`<button type="button" class="secondary" onClick=${() => load(cursor)} disabled=${busy}>Load more</button>` : null}
  `;
}
