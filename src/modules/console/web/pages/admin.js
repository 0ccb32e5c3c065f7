// Admin: users, usage, budgets, requests, storage, abuse, jobs, the outbox, the audit log and health, one
// sub-route each (`#/admin/users`, …). The navigation hides the area from
// non-admins; one who finds the route anyway gets a plain refusal (the API
// would answer every call here with 403 `admin_required`).
import { html } from '../lib/html.js';
import { Header } from '../lib/ui.js';
import { Abuse } from './admin/abuse.js';
import { Audit } from './admin/audit.js';
import { Budgets } from './admin/budgets.js';
import { Health } from './admin/health.js';
import { Jobs } from './admin/jobs.js';
import { Outbox } from './admin/outbox.js';
import { Requests, Storage } from './admin/traffic.js';
import { Usage } from './admin/usage.js';
import { Users } from './admin/users.js';

const SECTIONS = [
  { path: 'users', title: 'Users', component: Users },
  { path: 'usage', title: 'Usage', component: Usage },
  { path: 'budgets', title: 'Budgets', component: Budgets },
  { path: 'requests', title: 'Requests', component: Requests },
  { path: 'storage', title: 'Storage', component: Storage },
  { path: 'abuse', title: 'Abuse and bans', component: Abuse },
  { path: 'jobs', title: 'Jobs', component: Jobs },
  { path: 'outbox', title: 'Outbox', component: Outbox },
  { path: 'audit', title: 'Audit log', component: Audit },
  { path: 'health', title: 'Health', component: Health },
];

export function Admin({ route, user }) {
  if (user.role !== 'admin') {
    return html`<${Header} title="Admin" />
      <p class="error" role="alert">This area is for administrators. Your account does not have the admin role.</p>`;
  }
  const section = SECTIONS.find((s) => s.path === route.parts[1]) ?? SECTIONS[0];
  const Section = section.component;
  return html`<div class="admin">
    <${Header} title=${`Admin: ${section.title}`} />
    <nav class="admin-tabs" aria-label="Admin sections">
      <ul>
        ${SECTIONS.map((s) => html`<li><a href=${`#/admin/${s.path}`} aria-current=${s === section ? 'page' : undefined}>${s.title}</a></li>`)}
      </ul>
    </nav>
    <${Section} route=${route} user=${user} />
  </div>`;
}
