// Every page of the console: its path (the first part of the route), its
// title in the navigation, whether only admins see it, and how to load it.
// Pages load when first opened: the first load fetches the shell and the page
// shown, not the whole console.
export const PAGES = [
  { path: 'chat', title: 'Chat', nav: true, load: () => import('./chat.js').then((m) => m.Chat) },
  { path: 'playground', title: 'Playground', nav: true, load: () => import('./playground.js').then((m) => m.Playground) },
  { path: 'projects', title: 'Projects', nav: true, load: () => import('./projects.js').then((m) => m.Projects) },
  { path: 'documents', title: 'Documents', nav: true, load: () => import('./documents.js').then((m) => m.Documents) },
  { path: 'files', title: 'Files', nav: true, load: () => import('./files.js').then((m) => m.Files) },
  { path: 'knowledge', title: 'Knowledge', nav: true, load: () => import('./knowledge.js').then((m) => m.Knowledge) },
  { path: 'usage', title: 'Usage', nav: true, load: () => import('./usage.js').then((m) => m.Usage) },
  { path: 'keys', title: 'API keys', nav: true, load: () => import('./keys.js').then((m) => m.Keys) },
  { path: 'notifications', title: 'Notifications', nav: false, load: () => import('./notifications.js').then((m) => m.Notifications) },
  { path: 'settings', title: 'Settings', nav: true, load: () => import('./settings.js').then((m) => m.Settings) },
  { path: 'admin', title: 'Admin', nav: true, admin: true, load: () => import('./admin.js').then((m) => m.Admin) },
];

/**
 * Pages open without a session: where the links in Parley's emails lead
 * (`/reset-password?token=…`, `/verify-email?token=…`, moved into the fragment),
 * and a conversation shared by link (`#/shared/conversation/<token>`).
 */
export const PUBLIC_PAGES = [
  { path: 'reset-password', load: () => import('./email-links.js').then((m) => m.ResetPassword) },
  { path: 'verify-email', load: () => import('./email-links.js').then((m) => m.VerifyEmail) },
  { path: 'shared', load: () => import('./shared-conversation.js').then((m) => m.SharedConversation) },
];
