// Notifications: placeholder until its helper builds it (replace this whole file).
import { html } from '../lib/html.js';
import { Header } from '../lib/ui.js';

export function Notifications() {
  return html`<${Header} title="Notifications" /><p class="muted">Not built yet.</p>`;
}
