// Every page of the console: its path (the first part of the route), its
// title in the navigation, whether only admins see it.
import { Admin } from './admin.js';
import { Chat } from './chat.js';
import { Documents } from './documents.js';
import { Files } from './files.js';
import { Keys } from './keys.js';
import { Knowledge } from './knowledge.js';
import { Notifications } from './notifications.js';
import { Playground } from './playground.js';
import { Projects } from './projects.js';
import { Settings } from './settings.js';
import { Usage } from './usage.js';

export const PAGES = [
  { path: 'chat', title: 'Chat', nav: true, component: Chat },
  { path: 'playground', title: 'Playground', nav: true, component: Playground },
  { path: 'projects', title: 'Projects', nav: true, component: Projects },
  { path: 'documents', title: 'Documents', nav: true, component: Documents },
  { path: 'files', title: 'Files', nav: true, component: Files },
  { path: 'knowledge', title: 'Knowledge', nav: true, component: Knowledge },
  { path: 'usage', title: 'Usage', nav: true, component: Usage },
  { path: 'keys', title: 'API keys', nav: true, component: Keys },
  { path: 'notifications', title: 'Notifications', nav: false, component: Notifications },
  { path: 'settings', title: 'Settings', nav: true, component: Settings },
  { path: 'admin', title: 'Admin', nav: true, admin: true, component: Admin },
];
