import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface GitHubAccount {
  id: number;
  login: string;
  name?: string | null;
  /** The profile's public email, which GitHub does not vouch for. */
  email?: string | null;
  emails: Array<{ email: string; primary: boolean; verified: boolean }>;
}

interface Grant {
  account: GitHubAccount;
  redirectUri: string;
  scopes: string[];
  challenge?: string;
}

/**
 * A local GitHub speaking its OAuth wire format, GitHub Enterprise style (API
 * under /api/v3): the authorize page consents at once; the token endpoint
 * answers form-encoded unless asked for JSON and reports errors with HTTP 200;
 * /user and /user/emails want a token, a User-Agent and, for emails, the
 * user:email scope.
 */
export async function startFakeGitHub(clientId = 'gh-client', clientSecret = 'gh-secret') {
  const codes = new Map<string, Grant>();
  const tokens = new Map<string, Grant>();
  const state = {
    /** The account the next authorization signs in as. */
    account: { id: 1, login: 'octocat', emails: [] } as GitHubAccount,
    /** Every token request, for assertions. */
    tokenRequests: [] as Array<{ accept?: string; params: Record<string, string> }>,
  };

  const server = createServer(async (req, res) => {
    const url = new URL(req.url!, 'http://github.local');
    if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') return authorize(url, res);
    if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') return token(req, res, await readBody(req));
    if (req.method === 'GET' && url.pathname.startsWith('/api/v3/')) return apiCall(req, res, url.pathname.slice('/api/v3'.length));
    send(res, 404, 'application/json', JSON.stringify({ message: 'Not Found' }));
  });

  function authorize(url: URL, res: ServerResponse) {
    const q = url.searchParams;
    if (q.get('client_id') !== clientId || !q.get('redirect_uri')) return send(res, 404, 'text/html', '<h1>Not Found</h1>');
    const code = randomBytes(10).toString('hex');
    codes.set(code, { account: state.account, redirectUri: q.get('redirect_uri')!, scopes: (q.get('scope') ?? '').split(/[ ,]+/), challenge: q.get('code_challenge') ?? undefined });
    const back = new URL(q.get('redirect_uri')!);
    back.searchParams.set('code', code);
    if (q.get('state')) back.searchParams.set('state', q.get('state')!);
    res.writeHead(302, { location: back.href }).end();
  }

  function token(req: IncomingMessage, res: ServerResponse, params: Record<string, string>) {
    state.tokenRequests.push({ accept: req.headers.accept, params });
    const grant = codes.get(params.code ?? '');
    codes.delete(params.code ?? '');
    let answer: Record<string, string>;
    if (params.client_id !== clientId || params.client_secret !== clientSecret) {
      answer = { error: 'incorrect_client_credentials', error_description: 'The client_id and/or client_secret passed are incorrect.' };
    } else if (!grant || (grant.challenge && createHash('sha256').update(params.code_verifier ?? '').digest('base64url') !== grant.challenge)) {
      answer = { error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' };
    } else if (params.redirect_uri && params.redirect_uri !== grant.redirectUri) {
      answer = { error: 'redirect_uri_mismatch', error_description: 'The redirect_uri MUST match the registered callback URL for this application.' };
    } else {
      const accessToken = `gho_${randomBytes(18).toString('hex')}`;
      tokens.set(accessToken, grant);
      answer = { access_token: accessToken, token_type: 'bearer', scope: grant.scopes.join(',') };
    }
    // GitHub answers 200 either way, in the format the Accept header asks for.
    if (req.headers.accept?.includes('application/json')) return send(res, 200, 'application/json; charset=utf-8', JSON.stringify(answer));
    send(res, 200, 'application/x-www-form-urlencoded; charset=utf-8', new URLSearchParams(answer).toString());
  }

  function apiCall(req: IncomingMessage, res: ServerResponse, path: string) {
    if (!req.headers['user-agent']) return send(res, 403, 'text/plain', 'Request forbidden by administrative rules. Please make sure your request has a User-Agent header.');
    const [scheme, value] = (req.headers.authorization ?? '').split(' ');
    const grant = scheme && /^(token|bearer)$/i.test(scheme) ? tokens.get(value ?? '') : undefined;
    if (!grant) return send(res, 401, 'application/json', JSON.stringify({ message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' }));
    const a = grant.account;
    if (path === '/user') {
      return send(res, 200, 'application/json', JSON.stringify({ login: a.login, id: a.id, node_id: `U_${a.id}`, type: 'User', name: a.name ?? null, email: a.email ?? null }));
    }
    if (path === '/user/emails' && grant.scopes.some((s) => s === 'user:email' || s === 'user')) {
      return send(res, 200, 'application/json', JSON.stringify(a.emails.map((e) => ({ ...e, visibility: e.primary ? 'public' : null }))));
    }
    send(res, 404, 'application/json', JSON.stringify({ message: 'Not Found', documentation_url: 'https://docs.github.com/rest' }));
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    state,
    url,
    env: { GITHUB_CLIENT_ID: clientId, GITHUB_CLIENT_SECRET: clientSecret, GITHUB_BASE_URL: url, GITHUB_API_URL: `${url}/api/v3`, OAUTH_ALLOW_INSECURE_HTTP: 'true' },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export type FakeGitHub = Awaited<ReturnType<typeof startFakeGitHub>>;

async function readBody(req: IncomingMessage): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString();
  if (req.headers['content-type']?.includes('application/json')) return JSON.parse(text || '{}');
  return Object.fromEntries(new URLSearchParams(text));
}

function send(res: ServerResponse, status: number, type: string, body: string) {
  res.writeHead(status, { 'content-type': type }).end(body);
}
