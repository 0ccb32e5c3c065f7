// The console's shell: the session, the navigation and the page of the route.
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { onSignedOut } from './lib/api.js';
import { html } from './lib/html.js';
import { go, useRoute } from './lib/router.js';
import { loadSession, setSession, signOut, useSession } from './lib/session.js';
import { Bell } from './lib/bell.js';
import { SignIn, takeDestination } from './pages/sign-in.js';
import { PAGES, PUBLIC_PAGES } from './pages/index.js';

function Nav({ user, path }) {
  const items = PAGES.filter((p) => p.nav && (!p.admin || user.role === 'admin'));
  return html`<nav class="nav" aria-label="Main">
    <a class="brand" href="#/chat">Parley</a>
    <ul>
      ${items.map((p) => html`<li><a href=${`#/${p.path}`} aria-current=${path.startsWith(`/${p.path}`) ? 'page' : undefined}>${p.title}</a></li>`)}
    </ul>
    <div class="nav-end">
      <${Bell} />
      <span class="who" title=${user.email}>${user.name || user.email}</span>
      <button type="button" class="link" onClick=${signOut}>Sign out</button>
    </div>
  </nav>`;
}

/** Loaded components by page, so a page opened again renders at once. */
const loaded = new Map();

/** A page's component, loaded on first use. */
function Lazy({ page, route, user }) {
  const [, setReady] = useState(0);
  const [error, setError] = useState(undefined);
  const Page = loaded.get(page.path);
  useEffect(() => {
    if (Page) return;
    page.load().then(
      (component) => {
        loaded.set(page.path, component);
        setReady((n) => n + 1);
      },
      (err) => setError(err),
    );
  }, [page.path]);
  if (error) return html`<p class="error" role="alert">This page could not be loaded: ${error.message}. Reload to try again.</p>`;
  return Page ? html`<${Page} route=${route} user=${user} />` : html`<p class="loading">Loading…</p>`;
}

// An emailed link opens /reset-password?token=… or /verify-email?token=… (the server serves this page there):
// the same route in the fragment, where the console's routes are, and `/` in the path, so a reload keeps the place.
if (/^\/(?:reset-password|verify-email)$/.test(location.pathname)) history.replaceState(null, '', `/#${location.pathname}${location.search}`);

function App() {
  const session = useSession();
  const route = useRoute();
  useEffect(() => {
    loadSession().catch(() => setSession(null));
    return onSignedOut(() => setSession(null));
  }, []);
  const open = PUBLIC_PAGES.find((p) => p.path === route.parts[0]);
  if (open) return html`<${Lazy} page=${open} route=${route} user=${session.user} />`;
  if (session.user === undefined) return html`<p class="loading">Loading Parley…</p>`;
  if (session.user === null || route.parts[0] === 'sign-in') {
    // Signed in already (back from a provider): on to the route the user arrived on.
    if (session.user) {
      go(takeDestination());
      return null;
    }
    return html`<${SignIn} />`;
  }
  const page = PAGES.find((p) => p.path === route.parts[0]) ?? PAGES[0];
  if (!route.parts.length) go(`/${PAGES[0].path}`);
  return html`<div class="shell">
    <${Nav} user=${session.user} path=${route.path} />
    <main id="main" class="main"><${Lazy} page=${page} route=${route} user=${session.user} /></main>
  </div>`;
}

render(html`<${App} />`, document.getElementById('app'));
