// Sign in or create an account, in cookie mode; a second factor when the account has one.
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { html } from '../lib/html.js';
import { go } from '../lib/router.js';
import { loadSession } from '../lib/session.js';
import { ErrorNote, Field, useLoad } from '../lib/ui.js';

/**
 * An OAuth sign-in that needs a second factor comes back with the challenge in
 * the fragment (`#mfaRequired=true&mfaToken=…`): read it once, then clear it.
 */
function challengeInFragment() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ''));
  if (params.get('mfaRequired') !== 'true' || !params.get('mfaToken')) return undefined;
  history.replaceState(null, '', `${location.pathname}${location.search}#/sign-in`);
  return params.get('mfaToken');
}

/** Where the tab goes once signed in, kept across a provider's round trip. */
const NEXT = 'parley.signIn.next';

/**
 * The route to show once signed in: the one the user arrived on (a link to a
 * document or a share link, a page whose session ran out), else the chat.
 * Kept in the tab's storage, not in the provider's `redirectTo`: a share
 * link's token must not travel in a URL to the server.
 */
function destination() {
  const here = location.hash.replace(/^#/, '');
  const deep = here.startsWith('/') && here !== '/' && !/^\/sign-in(?:[/?]|$)/.test(here);
  try {
    if (deep) sessionStorage.setItem(NEXT, here);
    // A provider's challenge comes back in the fragment: what was kept before the trip still counts.
    else if (!here.startsWith('mfaRequired=')) sessionStorage.removeItem(NEXT);
    return sessionStorage.getItem(NEXT) ?? '/chat';
  } catch {
    return deep ? here : '/chat';
  }
}

/** The route kept for after sign-in (the chat if none), forgotten once taken. */
export function takeDestination() {
  try {
    const next = sessionStorage.getItem(NEXT) ?? '/chat';
    sessionStorage.removeItem(NEXT);
    return next;
  } catch {
    return '/chat';
  }
}

/** The provider's id as people know it (`github` → GitHub). */
const KNOWN = { github: 'GitHub', google: 'Google', gitlab: 'GitLab', microsoft: 'Microsoft', apple: 'Apple', oidc: 'single sign-on' };
const providerName = (id) => KNOWN[id] ?? id.charAt(0).toUpperCase() + id.slice(1);

/** One link per configured provider: the flow ends back here, signed in by cookie, and the shell goes on to the route kept. */
function Providers() {
  const [providers] = useLoad(() => api('GET', '/v1/auth/providers').catch(() => ({ data: [] })));
  if (!providers?.data.length) return null;
  const back = encodeURIComponent(`${location.origin}${location.pathname}#/sign-in`);
  return html`<div class="providers" role="group" aria-label="Other ways to sign in">
    ${providers.data.map((p) => html`<a class="button secondary" href=${`${p.authorizeUrl}?redirectTo=${back}`}>Continue with ${providerName(p.id)}</a>`)}
  </div>`;
}

/**
 * A code from the authenticator app is six decimal digits, of any script once spaces are left out (a phone's
 * keyboard may type １２３４５６ or ١٢٣٤٥٦; the server reads them all); anything else typed there is taken as a
 * backup code (`abcd-efgh-jkmn`).
 */
const mfaProof = (typed) => {
  const value = String(typed ?? '').trim();
  const compact = value.replace(/\s/g, '');
  return /^\p{Nd}{6}$/u.test(compact) ? { code: compact } : { backupCode: value };
};

/** The challenge is spent (used, expired, or past its wrong codes): only signing in again makes a new one. */
const challengeSpent = (err) => err?.status === 401 && err.code === 'invalid_mfa_token';

export function SignIn() {
  // Before the challenge is read: reading it puts #/sign-in in the address.
  const [next] = useState(destination);
  // `#/sign-in/forgot` (a spent reset link points there) opens on the request for a new link.
  const [mode, setMode] = useState(() => (/^#\/sign-in\/forgot\b/.test(location.hash) ? 'forgot' : 'sign-in'));
  const [sent, setSent] = useState(undefined);
  const [mfa, setMfa] = useState(challengeInFragment);
  const [backup, setBackup] = useState(false);
  const [error, setError] = useState(undefined);
  const [busy, setBusy] = useState(false);

  async function submit(e) {
    e.preventDefault();
    const form = Object.fromEntries(new FormData(e.currentTarget));
    setBusy(true);
    setError(undefined);
    try {
      if (mode === 'forgot' && !mfa) {
        // The same answer whether or not the address has an account.
        setSent((await api('POST', '/v1/auth/password/forgot', { body: { email: form.email } })).message);
        return;
      }
      if (mfa) {
        await api('POST', '/v1/auth/mfa/verify', { body: { mfaToken: mfa, ...mfaProof(form.code), cookie: true } });
      } else if (mode === 'sign-up') {
        await api('POST', '/v1/auth/register', { body: { email: form.email, password: form.password, name: form.name || undefined, cookie: true } });
      } else {
        const res = await api('POST', '/v1/auth/login', { body: { email: form.email, password: form.password, cookie: true } });
        if (res.mfaRequired) {
          setMfa(res.mfaToken);
          return;
        }
      }
      // The route first, then the session: signed in, the shell shows whatever route is there.
      takeDestination();
      go(next);
      await loadSession();
    } catch (err) {
      if (mfa && challengeSpent(err)) {
        // Back to the password step: another code on this challenge can only be refused again.
        setMfa(undefined);
        setBackup(false);
        setError(new Error('That sign-in expired or had too many wrong codes. Sign in again.'));
        return;
      }
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  const switchTo = (m) => {
    setMode(m);
    setError(undefined);
    setSent(undefined);
  };

  if (mode === 'forgot' && !mfa)
    return html`<main class="auth" id="main">
      <h1>Parley</h1>
      <form onSubmit=${submit} class="card">
        <h2>Reset your password</h2>
        <p class="muted">We will email a link to choose a new password.</p>
        <${Field} label="Email"><input name="email" type="email" autocomplete="email" required autofocus /></${Field}>
        <${ErrorNote} error=${error} />
        ${sent ? html`<p class="ok" role="status">${sent}</p>` : null}
        <button type="submit" disabled=${busy}>Send reset link</button>
        <p class="switch"><button type="button" class="link" onClick=${() => switchTo('sign-in')}>Back to sign in</button></p>
      </form>
    </main>`;

  return html`<main class="auth" id="main">
    <h1>Parley</h1>
    <form onSubmit=${submit} class="card">
      <h2>${mfa ? 'Two-factor code' : mode === 'sign-up' ? 'Create an account' : 'Sign in'}</h2>
      ${mfa
        ? backup
          ? html`<${Field} label="Backup code" hint="One of the codes you saved when you turned two-factor sign-in on; each works once"><input key="backup" name="code" autocomplete="off" autocapitalize="none" spellcheck="false" required autofocus /></${Field}>`
          : html`<${Field} label="Code from your authenticator app"><input key="code" name="code" inputmode="numeric" autocomplete="one-time-code" required autofocus /></${Field}>`
        : html`
            ${mode === 'sign-up' ? html`<${Field} label="Name"><input name="name" autocomplete="name" /></${Field}>` : null}
            <${Field} label="Email"><input name="email" type="email" autocomplete="email" required autofocus /></${Field}>
            <${Field} label="Password"><input name="password" type="password" minlength="8" autocomplete=${mode === 'sign-up' ? 'new-password' : 'current-password'} required /></${Field}>
          `}
      <${ErrorNote} error=${error} />
      <button type="submit" disabled=${busy}>${mfa ? 'Verify' : mode === 'sign-up' ? 'Create account' : 'Sign in'}</button>
      ${mfa
        ? html`<p class="switch"><button type="button" class="link" onClick=${() => setBackup(!backup)}>${backup ? 'Use a code from the app' : 'Use a backup code'}</button></p>`
        : html`<${Providers} />`}
      ${mfa
        ? null
        : html`<p class="switch">
            ${mode === 'sign-up' ? 'Have an account? ' : 'New here? '}
            <button type="button" class="link" onClick=${() => switchTo(mode === 'sign-up' ? 'sign-in' : 'sign-up')}>${mode === 'sign-up' ? 'Sign in' : 'Create an account'}</button>
          </p>`}
      ${mfa || mode === 'sign-up' ? null : html`<p class="switch"><button type="button" class="link" onClick=${() => switchTo('forgot')}>Forgot password?</button></p>`}
    </form>
  </main>`;
}
