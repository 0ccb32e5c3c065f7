// Admin: placeholder until its helper builds it (replace this whole file).
import { html } from '../lib/html.js';
import { Header } from '../lib/ui.js';

export function Admin() {
  return html`<${Header} title="Admin" /><p class="muted">Not built yet.</p>`;
}
