// The pages Parley's emails link to, open without a session: a new password
// with a reset token, and an email address confirmed with a verification
// token. The server serves the console at /reset-password and /verify-email
// (the links' paths); main.js moves them into the fragment
// (#/reset-password?token=…), where the console's routes are.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { html } from '../lib/html.js';
import { setSession, useSession } from '../lib/session.js';
import { ErrorNote, Field } from '../lib/ui.js';

/** A link that was bad from the start, expired or already used: said plainly, with the way on. */
const spent = (error) => error?.code === 'invalid_token';
const SPENT = 'This link is invalid, has expired or was already used.';

const Page = ({ title, children }) => html`<main class="auth" id="main">
  <h1>Parley</h1>
  <div class="card"><h2>${title}</h2>${children}</div>
</main>`;

/** `#/reset-password?token=…`: choose a new password. Every session of the account ends, this tab's included. */
export function ResetPassword({ route }) {
  const token = route.query.get('token') ?? '';
  const [state, setState] = useState({ busy: false, error: token ? undefined : { code: 'invalid_token' }, done: false });

  async function submit(e) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    if (f.get('password') !== f.get('confirm')) return setState({ busy: false, error: new Error('The two passwords are not the same.'), done: false });
    setState({ busy: true, error: undefined, done: false });
    try {
      await api('POST', '/v1/auth/password/reset', { body: { token, password: f.get('password') } });
      setSession(null);
      setState({ busy: false, error: undefined, done: true });
    } catch (error) {
      setState({ busy: false, error, done: false });
    }
  }

  if (state.done)
    return html`<${Page} title="Password changed">
      <p class="ok" role="status">Your new password is set, and every device was signed out.</p>
      <p><a class="button" href="#/sign-in">Sign in</a></p>
    </${Page}>`;
  if (spent(state.error))
    return html`<${Page} title="Reset your password">
      <p class="error" role="alert">${SPENT}</p>
      <p>Ask for a new link: <a href="#/sign-in/forgot">Forgot password?</a></p>
    </${Page}>`;
  return html`<${Page} title="Choose a new password">
    <form onSubmit=${submit}>
      <${Field} label="New password" hint="At least 8 characters"><input name="password" type="password" minlength="8" autocomplete="new-password" required autofocus /></${Field}>
      <${Field} label="Confirm password"><input name="confirm" type="password" minlength="8" autocomplete="new-password" required /></${Field}>
      <${ErrorNote} error=${state.error} />
      <button type="submit" disabled=${state.busy}>Set new password</button>
    </form>
  </${Page}>`;
}

/** `#/verify-email?token=…`: the address is confirmed as the page opens. */
export function VerifyEmail({ route }) {
  const token = route.query.get('token') ?? '';
  const session = useSession();
  const [state, setState] = useState({ error: token ? undefined : { code: 'invalid_token' }, done: false });
  const [resent, setResent] = useState({ error: undefined, done: false });
  useEffect(() => {
    if (!token) return;
    api('POST', '/v1/auth/verify-email', { body: { token } }).then(
      () => setState({ error: undefined, done: true }),
      (error) => setState({ error, done: false }),
    );
  }, []);
  const resend = () =>
    api('POST', '/v1/auth/verify-email/resend', { body: {} }).then(
      () => setResent({ error: undefined, done: true }),
      (error) => setResent({ error, done: false }),
    );
  const onward = session.user ? html`<a class="button" href="#/chat">Go to Parley</a>` : html`<a class="button" href="#/sign-in">Sign in</a>`;

  if (state.done)
    return html`<${Page} title="Email address confirmed">
      <p class="ok" role="status">Your email address is confirmed.</p>
      <p>${onward}</p>
    </${Page}>`;
  if (state.error)
    return html`<${Page} title="Confirm your email address">
      ${spent(state.error) ? html`<p class="error" role="alert">${SPENT}</p>` : html`<${ErrorNote} error=${state.error} />`}
      ${session.user
        ? html`<p><button type="button" class="secondary" onClick=${resend} disabled=${resent.done}>Send a new link</button></p>
            ${resent.done ? html`<p class="ok" role="status">A new link is on its way to ${session.user.email}.</p>` : html`<${ErrorNote} error=${resent.error} />`}`
        : html`<p>Signed in, you can ask for a new link. ${onward}</p>`}
    </${Page}>`;
  return html`<${Page} title="Confirm your email address"><p class="loading">Confirming…</p></${Page}>`;
}
