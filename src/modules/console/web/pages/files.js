// Files: placeholder until its helper builds it (replace this whole file).
import { html } from '../lib/html.js';
import { Header } from '../lib/ui.js';

export function Files() {
  return html`<${Header} title="Files" /><p class="muted">Not built yet.</p>`;
}
