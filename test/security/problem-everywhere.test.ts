import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { ConnectionError } from 'fastify';
import { writeClientError } from '../../src/http/problem.ts';
import { backends, startApp, type TestApp } from '../support/app.ts';

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends bytes as they are (no client tidies the request line, the headers or
 * the body) and reads the one response, to the end of the connection.
 */
function rawRequest(url: string, request: string): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    // The server may close before reading all it was sent (a refused header, a refused body).
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? socket.emit('close') : reject(err)));
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error(`no response: ${JSON.stringify(text.slice(0, 200))}`));
      const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine!.split(' ')[1]), headers, body: text.slice(end + 4) });
    });
    socket.write(request);
  });
}

const PROBLEM = /^application\/problem\+json/;

function assertProblem(res: RawResponse, status: number, what: string) {
  assert.equal(res.status, status, `${what}: ${res.status} ${res.body}`);
  assert.match(res.headers['content-type'] ?? '', PROBLEM, `${what}: ${res.headers['content-type']}`);
  const body = JSON.parse(res.body);
  for (const field of ['type', 'title', 'status', 'code']) assert.ok(field in body, `${what}: no ${field} in ${res.body}`);
  assert.equal(body.status, status, what);
  assert.equal(typeof body.code, 'string', what);
  return body;
}

/**
 * Every error Parley sends is RFC 9457 problem+json, including the ones no
 * route sees: refused by Node's HTTP parser (header too large, a malformed
 * request line or Content-Length), by the router (unknown route, unknown
 * method, over-long or malformed URL) or by the body parser (too large,
 * unsupported type, malformed JSON).
 */
for (const backend of backends()) {
  describe(`problem+json everywhere [${backend}]`, () => {
    let t: TestApp;
    let host: string;
    before(async () => {
      t = await startApp({ backend, env: { BODY_LIMIT_BYTES: '1024' } });
      host = new URL(t.url).host;
    });
    after(() => t.close());

    const send = (head: string, body = '') => rawRequest(t.url, `${head}\r\nHost: ${host}\r\nConnection: close\r\n\r\n${body}`);
    const post = (path: string, type: string, body: string, extra = '') =>
      send(`POST ${path} HTTP/1.1\r\nContent-Type: ${type}\r\nContent-Length: ${Buffer.byteLength(body)}${extra}`, body);

    test('refused by the HTTP parser: headers or request line too large (431), the rest (400)', async () => {
      const body = assertProblem(await send(`GET /health HTTP/1.1\r\nX-Big: ${'a'.repeat(20_000)}`), 431, 'a header too large');
      assert.equal(body.code, 'headers_too_large');
      assertProblem(await send(`GET /v1/projects/${'a'.repeat(20_000)} HTTP/1.1`), 431, 'a URL too large for the request line');
      const cases: Array<[string, string]> = [
        ['a Content-Length that is not a number', 'POST /v1/auth/login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: abc'],
        ['two Content-Lengths that disagree', 'POST /v1/auth/login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3'],
        ['Content-Length and chunked together', 'POST /v1/auth/login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked'],
        ['a method that is no method', 'BREW /health HTTP/1.1'],
        ['a request line that is not HTTP', 'HELLO THERE'],
        ['a header name with a space', 'GET /health HTTP/1.1\r\nBad Header: x'],
      ];
      for (const [what, head] of cases) {
        const res = await send(head);
        const problem = assertProblem(res, 400, what);
        assert.equal(problem.code, 'bad_request', what);
        assert.equal(res.headers.connection, 'close', what);
      }
      const chunked = await send('POST /v1/auth/login HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked', 'zz\r\n{}\r\n0\r\n\r\n');
      assertProblem(chunked, 400, 'a chunk size that is not hex');
    });

    test('refused by the router: unknown route or method (404), over-long or malformed URL (414, 400)', async () => {
      assertProblem(await send('GET /v1/no/such/route HTTP/1.1'), 404, 'an unknown route');
      for (const method of ['DELETE', 'PUT', 'PATCH', 'OPTIONS', 'PROPFIND', 'TRACE', 'SEARCH']) {
        assertProblem(await send(`${method} /health HTTP/1.1`), 404, `${method} on a GET route`);
      }
      assertProblem(await send(`GET /v1/projects/${'a'.repeat(300)} HTTP/1.1`), 414, 'a path parameter too long');
      assertProblem(await send('GET /v1/projects/%E0%A4%A HTTP/1.1'), 400, 'a malformed percent-encoding');
    });

    test('refused by the body parser: too large (413), unsupported type (415), malformed JSON (400)', async () => {
      assertProblem(await post('/v1/auth/login', 'application/json', JSON.stringify({ email: 'x'.repeat(2000) })), 413, 'a body over the limit');
      assertProblem(await send('POST /v1/auth/login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 99999999'), 413, 'a Content-Length over the limit');
      assertProblem(await post('/v1/auth/login', 'text/xml', '<login/>'), 415, 'an unsupported content type');
      assertProblem(await post('/v1/auth/login', 'application/json', '{"email":'), 400, 'malformed JSON');
      const empty = await post('/v1/auth/login', 'application/json', '');
      assertProblem(empty, 400, 'an empty JSON body where one is needed');
      assert.match(empty.body, /"code":"validation_failed"/, 'the body is missing, not malformed');
      assertProblem(await post('/v1/auth/login', 'application/json', '{"__proto__":{"x":1}}'), 400, 'a prototype key');
    });

    test('a HEAD request gets the problem type of the GET it mirrors, without a body', async () => {
      for (const [path, status] of [['/v1/no/such/route', 404], ['/v1/users/me', 401]] as const) {
        const res = await send(`HEAD ${path} HTTP/1.1`);
        assert.equal(res.status, status, path);
        assert.match(res.headers['content-type'] ?? '', PROBLEM, path);
        assert.equal(res.body, '', path);
      }
    });
  });
}

test('a request that takes too long to arrive is a 408 problem (the handler on its own socket)', async () => {
  const server = createServer((socket) => {
    socket.on('error', () => {}); // destroy(err) emits it; Node's HTTP server listens the same way
    writeClientError(Object.assign(new Error('timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }) as ConnectionError, socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const res = await rawRequest(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 'GET / HTTP/1.1\r\n');
    assert.equal(assertProblem(res, 408, 'a request timeout').code, 'request_timeout');
    assert.equal(res.headers.connection, 'close');
  } finally {
    server.close();
  }
});
