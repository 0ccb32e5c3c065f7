// Playground: placeholder until its helper builds it (replace this whole file).
import { html } from '../lib/html.js';
import { Header } from '../lib/ui.js';

export function Playground() {
  return html`<${Header} title="Playground" /><p class="muted">Not built yet.</p>`;
}
