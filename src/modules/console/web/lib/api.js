// The public API as the console calls it: same origin, the session in httpOnly
// cookies, a refresh when the access cookie has expired, problems as errors.

/** A problem answer (RFC 9457 shape) as an Error: `status`, `code`, `detail`. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `Request failed (${status})`);
    this.status = status;
    this.code = problem?.code;
    this.problem = problem;
  }
}

let refreshing;

/** One refresh at a time, however many requests found the access cookie expired. */
function refresh() {
  refreshing ??= fetch('/v1/auth/refresh', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    .then((r) => r.ok)
    .finally(() => setTimeout(() => (refreshing = undefined), 0));
  return refreshing;
}

/**
 * The sign-in flows themselves, which need no session: a 401 there is their
 * answer (a wrong password, a spent link), not an expired access cookie. Any
 * other call, `/v1/auth/sessions` and `/v1/auth/logout-all` included, is
 * retried once after a refresh.
 */
const SIGN_IN = /^\/v1\/auth\/(?:(?:login|register|refresh|logout|mfa\/verify|password\/forgot|password\/reset|verify-email|providers)(?:\?|$)|oauth\/)/;

/** Listeners told when the session is gone (refresh failed): the app shows sign-in. */
const signedOut = new Set();
export const onSignedOut = (fn) => (signedOut.add(fn), () => signedOut.delete(fn));

/**
 * A request to the API. `body` is sent as JSON (a FormData as is); the answer
 * parsed as JSON when it is. Throws ApiError for a problem.
 */
export async function api(method, path, { body, headers = {}, signal, raw = false, retry = true } = {}) {
  const init = { method, headers: { ...headers }, signal };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['content-type'] = 'application/json';
  }
  const res = await fetch(path, init);
  if (res.status === 401 && retry && !SIGN_IN.test(path)) {
    if (await refresh()) return api(method, path, { body, headers, signal, raw, retry: false });
    for (const fn of signedOut) fn();
  }
  if (raw) {
    if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => undefined));
    return res;
  }
  const text = await res.text();
  const data = text && (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text;
  if (!res.ok) throw new ApiError(res.status, typeof data === 'object' ? data : undefined);
  return data;
}

/**
 * Every item of a cursor-paged list (`{data, nextCursor}`), the cursor
 * followed to the end: for what must be whole (a document's comment threads,
 * a picker, the names of ids). `path` asks for the largest page the endpoint
 * allows. Answers `{data}` like one page would.
 */
export async function allPages(path, opts) {
  const data = [];
  let cursor = null;
  do {
    const page = await api('GET', cursor ? `${path}${path.includes('?') ? '&' : '?'}cursor=${encodeURIComponent(cursor)}` : path, opts);
    data.push(...page.data);
    cursor = page.nextCursor ?? null;
  } while (cursor);
  return { data, nextCursor: null };
}

/**
 * Server-sent events of a response (a POST or GET with Accept: text/event-stream),
 * parsed as they arrive: yields `{ id, event, data }`.
 */
export async function* events(res) {
  for await (const fields of frames(res)) {
    if (fields.data !== undefined) yield { id: fields.id === undefined ? undefined : Number(fields.id), event: fields.event ?? 'message', data: JSON.parse(fields.data) };
  }
}

/** The raw fields of each Server-Sent Event frame as it arrives (`data` lines joined), before any parsing of the data. */
export async function* frames(res) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = {};
      for (const line of block.split('\n')) {
        if (!line || line.startsWith(':')) continue;
        const i = line.indexOf(':');
        const name = i < 0 ? line : line.slice(0, i);
        const v = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
        fields[name] = fields[name] === undefined ? v : `${fields[name]}\n${v}`;
      }
      yield fields;
    }
  }
}

/** Opens an event stream: a request whose answer is `text/event-stream`. */
export const stream = (method, path, opts = {}) => api(method, path, { ...opts, headers: { ...opts.headers, accept: 'text/event-stream' }, raw: true });
