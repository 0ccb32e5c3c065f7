// Who is signed in, and their preferences: read once, shared by every page.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api.js';

const state = { user: undefined, preferences: undefined, listeners: new Set() };
const changed = () => state.listeners.forEach((fn) => fn());

/** Applies the theme preference: `system` follows the browser. */
export function applyTheme(theme) {
  const dark = theme === 'dark' || (theme !== 'light' && matchMedia('(prefers-color-scheme: dark)').matches);
  document.documentElement.dataset.theme = dark ? 'dark' : 'light';
}

/** Reads the signed-in user (undefined while reading, null when signed out). */
export async function loadSession() {
  try {
    const [user, preferences] = await Promise.all([api('GET', '/v1/users/me'), api('GET', '/v1/users/me/preferences')]);
    Object.assign(state, { user, preferences });
    applyTheme(preferences.theme);
  } catch (err) {
    if (err.status !== 401) throw err;
    Object.assign(state, { user: null, preferences: undefined });
  }
  changed();
}

export function setSession(user, preferences) {
  Object.assign(state, { user, preferences: preferences ?? state.preferences });
  if (state.preferences) applyTheme(state.preferences.theme);
  changed();
}

export async function signOut() {
  await api('POST', '/v1/auth/logout', { body: {} }).catch(() => {});
  setSession(null);
  location.hash = '#/sign-in';
}

/** The session as a hook: re-renders when it changes. */
export function useSession() {
  const [, tick] = useState(0);
  useEffect(() => {
    const fn = () => tick((n) => n + 1);
    state.listeners.add(fn);
    return () => state.listeners.delete(fn);
  }, []);
  return state;
}
