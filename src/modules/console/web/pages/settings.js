// Settings: placeholder until its helper builds it (replace this whole file).
import { html } from '../lib/html.js';
import { Header } from '../lib/ui.js';

export function Settings() {
  return html`<${Header} title="Settings" /><p class="muted">Not built yet.</p>`;
}
