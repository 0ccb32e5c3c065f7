// Projects: placeholder until its helper builds it (replace this whole file).
import { html } from '../lib/html.js';
import { Header } from '../lib/ui.js';

export function Projects() {
  return html`<${Header} title="Projects" /><p class="muted">Not built yet.</p>`;
}
