// Keys: placeholder until its helper builds it (replace this whole file).
import { html } from '../lib/html.js';
import { Header } from '../lib/ui.js';

export function Keys() {
  return html`<${Header} title="Keys" /><p class="muted">Not built yet.</p>`;
}
