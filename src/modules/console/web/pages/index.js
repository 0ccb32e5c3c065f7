// Every page of the console: its path (the first part of the route), its
// title in the navigation, whether only admins see it.
import { Chat } from './chat.js';

export const PAGES = [{ path: 'chat', title: 'Chat', nav: true, component: Chat }];
