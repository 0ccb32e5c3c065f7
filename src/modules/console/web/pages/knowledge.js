// Knowledge: placeholder until its helper builds it (replace this whole file).
import { html } from '../lib/html.js';
import { Header } from '../lib/ui.js';

export function Knowledge() {
  return html`<${Header} title="Knowledge" /><p class="muted">Not built yet.</p>`;
}
