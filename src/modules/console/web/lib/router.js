// Hash routes (`#/chat/<id>`): the server serves one page; links and reloads keep the place.
import { useEffect, useState } from 'preact/hooks';

const current = () => location.hash.replace(/^#/, '') || '/';

/** The route as `{ path, parts, query }`, re-rendered on every hash change. */
export function useRoute() {
  const [path, setPath] = useState(current());
  useEffect(() => {
    const fn = () => setPath(current());
    addEventListener('hashchange', fn);
    return () => removeEventListener('hashchange', fn);
  }, []);
  const [pathname, search = ''] = path.split('?');
  return { path: pathname, parts: pathname.split('/').filter(Boolean), query: new URLSearchParams(search) };
}

export const go = (path) => {
  location.hash = `#${path}`;
};
