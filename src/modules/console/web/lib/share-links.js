// Share links as documents and conversations make them: an expiry to choose, the address shown once to copy,
// and where each link stands.
import { when } from './format.js';
import { html } from './html.js';
import { Field } from './ui.js';

const EXPIRIES = [
  ['', 'Never (until revoked)'],
  [String(24 * 3600), 'In a day'],
  [String(7 * 24 * 3600), 'In a week'],
  [String(30 * 24 * 3600), 'In 30 days'],
];

/** The `expiresIn` field of a new link's form: read it with `expiresIn(form)`. */
export const ExpiryField = () => html`<${Field} label="Expires"><select name="expiresIn">${EXPIRIES.map(([v, label]) => html`<option value=${v}>${label}</option>`)}</select></${Field}>`;

/** The seconds chosen in the form's ExpiryField; undefined for never. */
export const expiresIn = (form) => {
  const v = new FormData(form).get('expiresIn');
  return v ? Number(v) : undefined;
};

/** Revoked, expired, or until when. */
export const linkState = (l) => (l.revokedAt ? 'revoked' : l.expiresAt && Date.parse(l.expiresAt) < Date.now() ? 'expired' : l.expiresAt ? `until ${when(l.expiresAt)}` : 'no expiry');

/** A new link's address, shown once: only the token's hash is kept. */
export const NewLinkAddress = ({ address, onDone }) => html`<div class="card new-link" role="region" aria-label="New link">
  <p>Copy the link now: it is not shown again.</p>
  <input readonly value=${address} aria-label="Link address" onFocus=${(e) => e.currentTarget.select()} />
  <button type="button" class="secondary" onClick=${() => navigator.clipboard?.writeText(address)}>Copy link</button>
  <button type="button" class="link" onClick=${onDone}>Done</button>
</div>`;
