// The notifications bell in the navigation: the unread count, kept live by one
// WebSocket per tab (topic `notifications`), shared with the notifications page.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';
import { html } from './html.js';

const live = { count: undefined, listeners: new Set(), events: new Set() };
const changed = () => live.listeners.forEach((fn) => fn());

/** Re-reads the unread count (after a reconnect, or a change made on this page). */
export async function refreshUnread() {
  try {
    live.count = (await api('GET', '/v1/notifications/unread-count')).count;
    changed();
  } catch {
    // Signed out meanwhile, or the server is restarting: the next event or reconnect reads it again.
  }
}

/** The unread count as a hook (undefined until first read). */
export function useUnread() {
  const [, tick] = useState(0);
  useEffect(() => {
    const fn = () => tick((n) => n + 1);
    live.listeners.add(fn);
    return () => live.listeners.delete(fn);
  }, []);
  return live.count;
}

/**
 * Domain events of the `notifications` topic as they arrive
 * (`notification.created`, `notification.read`): the notifications page
 * listens too, so a new one shows without a reload.
 */
export const onNotificationEvent = (fn) => (live.events.add(fn), () => live.events.delete(fn));

/**
 * One socket while the bell is shown (signed in). The session cookie
 * authenticates the same-origin upgrade, so no token ever reaches script.
 * Delivery is at most once per socket: after a reconnect the count is read again.
 */
function connect() {
  let socket;
  let retry;
  let delay = 1000;
  let closed = false;
  const seen = new Set();

  const open = () => {
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`;
    socket = new WebSocket(url, ['parley.v1']);
    socket.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.type === 'ready') socket.send(JSON.stringify({ type: 'subscribe', topic: 'notifications' }));
      if (msg.type === 'subscribed') {
        delay = 1000;
        refreshUnread();
      }
      if (msg.type !== 'event' || seen.has(msg.event.id)) return;
      // The relay is at least once: the same event may come twice.
      seen.add(msg.event.id);
      if (seen.size > 500) seen.delete(seen.values().next().value);
      live.events.forEach((fn) => fn(msg.event));
      refreshUnread();
    };
    socket.onclose = (e) => {
      // 4403 is a ban: reconnecting would not help.
      if (closed || e.code === 4403) return;
      // 4401: the access cookie expired (or the session ended). A request refreshes
      // the cookie if the session lives on (else the app shows sign-in), then reconnect.
      if (e.code === 4401) {
        api('GET', '/v1/notifications/unread-count').then(() => !closed && open(), () => {});
        return;
      }
      retry = setTimeout(open, delay);
      delay = Math.min(delay * 2, 30_000);
    };
  };
  open();
  return () => {
    closed = true;
    clearTimeout(retry);
    socket?.close(1000);
  };
}

export function Bell() {
  const count = useUnread();
  useEffect(() => {
    refreshUnread();
    return connect();
  }, []);
  const n = count ?? 0;
  return html`<a class="bell" href="#/notifications" aria-label=${n ? `Notifications, ${n} unread` : 'Notifications'}>
    <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false"><path fill="currentColor" d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1Z" /></svg>
    ${n ? html`<span class="badge" aria-hidden="true">${n > 99 ? '99+' : n}</span>` : null}
  </a>`;
}
