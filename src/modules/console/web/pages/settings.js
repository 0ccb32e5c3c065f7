// Settings: the account as its owner manages it. One section per route
// (`#/settings/<section>`): profile, preferences, notifications, sessions and
// devices, two-factor sign-in, and the account's data (export, deletion).
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { when } from '../lib/format.js';
import { html } from '../lib/html.js';
import { setSession, useSession } from '../lib/session.js';
import { ErrorNote, Field, Header, Status, useAction, useLoad } from '../lib/ui.js';

const SECTIONS = [
  { id: 'profile', title: 'Profile' },
  { id: 'preferences', title: 'Preferences' },
  { id: 'notifications', title: 'Notifications' },
  { id: 'sessions', title: 'Sessions and devices' },
  { id: 'security', title: 'Two-factor sign-in' },
  { id: 'data', title: 'Your data' },
];

const CHANNEL_NAMES = { inApp: 'In app', email: 'Email', push: 'Push', sms: 'SMS', slack: 'Slack' };


function Profile({ user }) {
  const [state, run] = useAction();
  const save = (e) => {
    e.preventDefault();
    const name = new FormData(e.currentTarget).get('name').trim();
    run(async () => setSession(await api('PATCH', '/v1/users/me', { body: { name: name || null } })), 'Saved.');
  };
  return html`<form class="card settings-form" onSubmit=${save}>
    <h2>Profile</h2>
    <${Field} label="Name"><input name="name" autocomplete="name" maxlength="200" value=${user.name ?? ''} /></${Field}>
    <${Field} label="Email"><input value=${user.email} readonly /></${Field}>
    <button type="submit" disabled=${state.busy}>Save profile</button>
    <${Status} state=${state} />
  </form>`;
}

function Preferences() {
  const session = useSession();
  const prefs = session.preferences;
  const [models] = useLoad(() => api('GET', '/v1/models').catch(() => ({ data: [] })));
  const [state, run] = useAction();

  // The theme applies the moment it is chosen; the rest on save.
  const patch = (body, done) => run(async () => setSession(session.user, await api('PATCH', '/v1/users/me/preferences', { body })), done);
  const save = (e) => {
    e.preventDefault();
    const form = Object.fromEntries(new FormData(e.currentTarget));
    patch({ locale: form.locale.trim() || 'en', timezone: form.timezone.trim() || 'UTC', defaultModel: form.defaultModel.trim() || null }, 'Saved.');
  };
  if (!prefs) return null;
  return html`<form class="card settings-form" onSubmit=${save}>
    <h2>Preferences</h2>
    <${Field} label="Theme">
      <select name="theme" value=${prefs.theme} onChange=${(e) => patch({ theme: e.currentTarget.value })}>
        <option value="system">Same as the device</option>
        <option value="light">Light</option>
        <option value="dark">Dark</option>
      </select>
    </${Field}>
    <${Field} label="Language" hint="A language tag, such as en or fr-CA"><input name="locale" value=${prefs.locale} maxlength="35" /></${Field}>
    <${Field} label="Time zone" hint="When daily and monthly budgets reset, and quiet hours"><input name="timezone" value=${prefs.timezone} list="timezones" /></${Field}>
    <datalist id="timezones">${(Intl.supportedValuesOf?.('timeZone') ?? []).map((z) => html`<option value=${z} />`)}</datalist>
    <${Field} label="Default model" hint="Empty: the deployment's default">
      <input name="defaultModel" value=${prefs.defaultModel ?? ''} list="models" placeholder="provider:model" />
    </${Field}>
    <datalist id="models">${(models?.data ?? []).map((m) => html`<option value=${m.id} />`)}</datalist>
    <button type="submit" disabled=${state.busy}>Save preferences</button>
    <${Status} state=${state} />
  </form>`;
}

function NotificationPreferences() {
  const [data, error, reload] = useLoad(() => api('GET', '/v1/notifications/preferences'));
  const [state, run] = useAction();
  // The box shows the choice at once; the server's answer (a reload) confirms it, a failure puts it back.
  const [chosen, setChosen] = useState({});
  if (error) return html`<${ErrorNote} error=${error} />`;
  if (!data) return html`<p class="muted">Loading…</p>`;
  const channels = Object.keys(CHANNEL_NAMES).filter((c) => data.data.some((row) => row.channels[c]));
  const toggle = (category, channel, enabled) => {
    const key = `${category}/${channel}`;
    setChosen((c) => ({ ...c, [key]: enabled }));
    return run(async () => {
      try {
        await api('PUT', '/v1/notifications/preferences', { body: { preferences: [{ category, channel, enabled }] } });
      } catch (err) {
        setChosen(({ [key]: _, ...rest }) => rest);
        throw err;
      }
      reload();
    }, 'Saved.');
  };
  return html`<section class="card">
    <h2>Notifications</h2>
    <p class="muted">Which notifications reach you, and where. A channel switched off for everything is marked “off everywhere”.</p>
    <div class="table-scroll">
      <table class="notification-prefs">
        <thead><tr><th scope="col">Category</th>${channels.map((c) => html`<th scope="col">${CHANNEL_NAMES[c]}</th>`)}</tr></thead>
        <tbody>
          ${data.data.map(
            (row) => html`<tr>
              <th scope="row"><span>${row.category}</span><small class="muted">${row.description}</small></th>
              ${channels.map((c) => {
                const p = row.channels[c];
                if (!p) return html`<td></td>`;
                return html`<td>
                  <input type="checkbox" checked=${chosen[`${row.category}/${c}`] ?? p.enabled}
                    aria-label=${`${row.category}: ${CHANNEL_NAMES[c]}`}
                    onChange=${(e) => toggle(row.category, c, e.currentTarget.checked)} />
                  ${p.allOff ? html`<small class="muted"> off everywhere</small>` : null}
                </td>`;
              })}
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
    <${Status} state=${state} />
  </section>`;
}

function Sessions() {
  const [data, error, reload] = useLoad(() => api('GET', '/v1/auth/sessions'));
  const [state, run] = useAction();
  const [sure, setSure] = useState(false);
  const revoke = (s) =>
    run(async () => {
      await api('DELETE', `/v1/auth/sessions/${s.id}`);
      reload();
    }, 'Signed that device out.');
  const everywhere = () =>
    run(async () => {
      await api('POST', '/v1/auth/logout-all', { body: {} });
      setSession(null);
      location.hash = '#/sign-in';
    });
  return html`<section class="card">
    <h2>Sessions and devices</h2>
    <${ErrorNote} error=${error} />
    ${data
      ? html`<ul class="sessions" aria-label="Sessions">
          ${data.data.map(
            (s) => html`<li key=${s.id}>
              <div>
                <strong>${s.device || 'Unknown device'}</strong>${s.current ? html` <span class="tag">This device</span>` : null}
                <small class="muted">${s.method} · ${s.ip ?? 'no IP'} · signed in ${when(s.createdAt)} · last used ${when(s.lastUsedAt)}</small>
              </div>
              ${s.current ? null : html`<button type="button" class="secondary" onClick=${() => revoke(s)} disabled=${state.busy} aria-label=${`Revoke session from ${s.device || 'unknown device'}, signed in ${when(s.createdAt)}`}>Revoke</button>`}
            </li>`,
          )}
        </ul>`
      : html`<p class="muted">Loading…</p>`}
    ${sure
      ? html`<p role="alert">Sign out on every device, this one included?</p>
          <div class="row">
            <button type="button" class="danger" onClick=${everywhere} disabled=${state.busy}>Yes, sign out everywhere</button>
            <button type="button" class="secondary" onClick=${() => setSure(false)}>Cancel</button>
          </div>`
      : html`<button type="button" class="danger" onClick=${() => setSure(true)}>Sign out everywhere</button>`}
    <${Status} state=${state} />
  </section>`;
}

function BackupCodes({ codes, onDone }) {
  return html`<div class="backup-codes" role="region" aria-label="Backup codes">
    <p><strong>Your backup codes.</strong> Each signs you in once if you lose your authenticator. They are shown only now: keep them somewhere safe.</p>
    <ul>${codes.map((c) => html`<li><code>${c}</code></li>`)}</ul>
    <button type="button" onClick=${onDone}>I have saved them</button>
  </div>`;
}

function TwoFactor() {
  const [mfa, error, reload] = useLoad(() => api('GET', '/v1/auth/mfa'));
  const [enrolment, setEnrolment] = useState(undefined);
  const [codes, setCodes] = useState(undefined);
  const [state, run] = useAction();

  if (error) return html`<${ErrorNote} error=${error} />`;
  if (!mfa) return html`<p class="muted">Loading…</p>`;
  if (codes) return html`<section class="card"><h2>Two-factor sign-in</h2><${BackupCodes} codes=${codes} onDone=${() => (setCodes(undefined), reload())} /></section>`;

  const start = () => run(async () => setEnrolment(await api('POST', '/v1/auth/mfa/totp/enroll', { body: {} })));
  const activate = (e) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const code = form.get('code').trim();
    // The password proves it is the account's holder, not just someone holding its session.
    const password = form.get('password');
    run(async () => {
      const res = await api('POST', '/v1/auth/mfa/totp/activate', { body: password ? { code, password } : { code } });
      setEnrolment(undefined);
      setCodes(res.backupCodes ?? res.codes ?? []);
    });
  };
  const disable = (e) => {
    e.preventDefault();
    const form = Object.fromEntries(new FormData(e.currentTarget));
    const body = form.code.trim() ? { code: form.code.trim() } : { password: form.password };
    run(async () => {
      await api('POST', '/v1/auth/mfa/totp/disable', { body });
      reload();
    }, 'Two-factor sign-in is off.');
  };
  const regenerate = (e) => {
    e.preventDefault();
    const code = new FormData(e.currentTarget).get('code').trim();
    run(async () => {
      const res = await api('POST', '/v1/auth/mfa/backup-codes/regenerate', { body: { code } });
      setCodes(res.backupCodes ?? res.codes ?? []);
    });
  };

  if (mfa.totpEnabled) {
    return html`<section class="card">
      <h2>Two-factor sign-in</h2>
      <p>On: signing in asks for a code from your authenticator app. Backup codes left: ${mfa.backupCodesRemaining}.</p>
      <form class="settings-form" onSubmit=${regenerate}>
        <h3>New backup codes</h3>
        <${Field} label="Authenticator code for new backup codes"><input name="code" inputmode="numeric" autocomplete="one-time-code" required /></${Field}>
        <button type="submit" class="secondary" disabled=${state.busy}>Make new backup codes</button>
      </form>
      <form class="settings-form" onSubmit=${disable}>
        <h3>Turn off</h3>
        <${Field} label="Authenticator code to turn off" hint="Or your password below"><input name="code" inputmode="numeric" autocomplete="one-time-code" /></${Field}>
        <${Field} label="Password to turn off"><input name="password" type="password" autocomplete="current-password" /></${Field}>
        <button type="submit" class="danger" disabled=${state.busy}>Turn off two-factor sign-in</button>
      </form>
      <${Status} state=${state} />
    </section>`;
  }
  return html`<section class="card">
    <h2>Two-factor sign-in</h2>
    ${enrolment
      ? html`<form class="settings-form" onSubmit=${activate}>
          <p>Add this account to your authenticator app: open the link on this device, or type the secret key in.</p>
          <p><a href=${enrolment.otpauthUrl}>Open in an authenticator app</a></p>
          <${Field} label="Secret key"><input readonly value=${enrolment.secret} class="secret" data-secret=${enrolment.secret} /></${Field}>
          <details><summary>Setup address</summary><code class="wrap">${enrolment.otpauthUrl}</code></details>
          <${Field} label="Code from your authenticator app"><input name="code" inputmode="numeric" autocomplete="one-time-code" required /></${Field}>
          <${Field} label="Your password" hint="Accounts without a password: sign in again first"><input name="password" type="password" autocomplete="current-password" /></${Field}>
          <button type="submit" disabled=${state.busy}>Confirm and turn on</button>
        </form>`
      : html`<p>Off. With it on, signing in also asks for a code from an authenticator app.</p>
          <button type="button" onClick=${start} disabled=${state.busy}>Set up two-factor sign-in</button>`}
    <${Status} state=${state} />
  </section>`;
}

function Data({ user }) {
  const [deleting, runDelete] = useAction();
  const [confirmText, setConfirmText] = useState('');
  const remove = (e) => {
    e.preventDefault();
    const password = new FormData(e.currentTarget).get('password');
    runDelete(async () => {
      await api('DELETE', '/v1/users/me', { body: password ? { password } : {} });
      setSession(null);
      location.hash = '#/sign-in';
    });
  };
  return html`<section class="card">
    <h2>Your data</h2>
    <h3>Export</h3>
    <p>Everything in your account as one zip: profile, every conversation with all its branches, documents with their versions and comments, your files, projects, collections, notifications and API key names.</p>
    <a class="button secondary" href="/v1/users/me/export" download>Download my data</a>
    <form class="settings-form danger-zone" onSubmit=${remove}>
      <h3>Delete the account</h3>
      <p>Deletes the account and everything in it, for good. This cannot be undone.</p>
      <${Field} label="Password" hint="Accounts without a password: sign in again first"><input name="password" type="password" autocomplete="current-password" /></${Field}>
      <${Field} label=${`Type ${user.email} to confirm`}><input value=${confirmText} onInput=${(e) => setConfirmText(e.currentTarget.value)} autocomplete="off" /></${Field}>
      <button type="submit" class="danger" disabled=${deleting.busy || confirmText.trim().toLowerCase() !== user.email.toLowerCase()}>Delete my account</button>
      <${Status} state=${deleting} />
    </form>
  </section>`;
}

export function Settings({ route, user }) {
  const id = SECTIONS.some((s) => s.id === route.parts[1]) ? route.parts[1] : 'profile';
  const body = {
    profile: html`<${Profile} user=${user} />`,
    preferences: html`<${Preferences} />`,
    notifications: html`<${NotificationPreferences} />`,
    sessions: html`<${Sessions} />`,
    security: html`<${TwoFactor} />`,
    data: html`<${Data} user=${user} />`,
  }[id];
  return html`
    <${Header} title="Settings" />
    <div class="settings">
      <nav aria-label="Settings sections" class="settings-nav">
        <ul>${SECTIONS.map((s) => html`<li><a href=${`#/settings/${s.id}`} aria-current=${s.id === id ? 'page' : undefined}>${s.title}</a></li>`)}</ul>
      </nav>
      <div class="settings-body" key=${id}>${body}</div>
    </div>
  `;
}
