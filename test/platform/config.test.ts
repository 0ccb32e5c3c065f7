import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';

/** Asserts that loading `env` fails with a ConfigError whose message names every one of `names`. */
function rejects(env: Record<string, string>, ...names: string[]) {
  assert.throws(
    () => loadConfig(env),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${err}`);
      for (const name of names) assert.match(err.message, new RegExp(`\\b${name}\\b`), `the message names ${name}`);
      return true;
    },
  );
}

describe('loadConfig', () => {
  test('an empty environment gives working defaults', () => {
    const c = loadConfig({});
    assert.equal(c.env, 'development');
    assert.equal(c.port, 3000);
    assert.equal(c.host, '0.0.0.0');
    assert.equal(c.publicUrl, 'http://localhost:3000');
    assert.equal(c.dataDir, path.resolve('./data'));
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.redisUrl, undefined);
    assert.equal(c.masterKey, undefined);
    assert.deepEqual(c.allowedOrigins, ['http://localhost:3000']);
    assert.equal(c.auth.accessTtl, 900);
    assert.deepEqual(c.auth.rateLimit, { perIp: 30, perAccount: 10, windowSeconds: 900 });
    assert.deepEqual(c.auth.oauth.providers, []);
  });

  test('the token issuer is PUBLIC_URL when set, else a constant that does not depend on the port', () => {
    assert.equal(loadConfig({ PORT: '3000' }).auth.issuer, loadConfig({ PORT: '4000' }).auth.issuer);
    assert.equal(loadConfig({ PUBLIC_URL: 'https://chat.example.com/' }).auth.issuer, 'https://chat.example.com');
  });

  test('values are parsed: numbers, booleans, lists, trailing slashes, empty strings as unset', () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    const c = loadConfig({
      PORT: '8080',
      PUBLIC_URL: 'https://chat.example.com/',
      TRUST_PROXY: 'yes',
      ALLOWED_ORIGINS: 'https://a.example, https://b.example,',
      PARLEY_MASTER_KEY: key,
      DATABASE_URL: 'postgresql://u@db:5432/parley',
      REDIS_URL: '',
    });
    assert.equal(c.port, 8080);
    assert.equal(c.publicUrl, 'https://chat.example.com');
    assert.equal(c.trustProxy, true);
    assert.deepEqual(c.allowedOrigins, ['https://a.example', 'https://b.example']);
    assert.deepEqual(c.masterKey, Buffer.alloc(32, 7));
    assert.equal(c.databaseUrl, 'postgresql://u@db:5432/parley');
    assert.equal(c.redisUrl, undefined);
  });

  test("TRUST_PROXY: on or off, or the proxies' addresses and ranges", () => {
    const trust = (v: string) => loadConfig({ TRUST_PROXY: v }).trustProxy;
    assert.equal(trust('true'), true);
    assert.equal(trust('no'), false);
    assert.equal(trust('0'), false);
    assert.equal(trust('1'), true);
    assert.deepEqual(trust('10.0.0.0/8, 192.168.1.7 ,loopback, fd00::/8'), ['10.0.0.0/8', '192.168.1.7', 'loopback', 'fd00::/8']);
    for (const bad of ['2', '10.0.0.0/33', '10.0.0/8', 'fd00::/129', 'example.com', '10.0.0.1/8/2', ',']) rejects({ TRUST_PROXY: bad }, 'TRUST_PROXY');
  });

  test('memory:// stays as is; other data dirs become absolute', () => {
    assert.equal(loadConfig({ PARLEY_DATA_DIR: 'memory://' }).dataDir, 'memory://');
    assert.equal(loadConfig({ PARLEY_DATA_DIR: 'var/parley' }).dataDir, path.resolve('var/parley'));
  });

  test('a bad value is an error naming the variable', () => {
    rejects({ PORT: 'abc' }, 'PORT');
    rejects({ PORT: '70000' }, 'PORT');
    rejects({ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL');
    rejects({ REDIS_URL: 'http://cache' }, 'REDIS_URL');
    rejects({ PARLEY_MASTER_KEY: 'c2hvcnQ=' }, 'PARLEY_MASTER_KEY');
    rejects({ LOG_LEVEL: 'loud' }, 'LOG_LEVEL');
    rejects({ TRUST_PROXY: 'maybe' }, 'TRUST_PROXY');
    rejects({ ACCESS_TOKEN_TTL_SECONDS: '0' }, 'ACCESS_TOKEN_TTL_SECONDS');
  });

  test('PUBLIC_URL must be an http(s) URL: a bare host:port is not a URL of scheme "host:"', () => {
    for (const value of ['chat.example.com:443', 'ftp://chat.example.com', 'mailto:admin@example.com', 'javascript:alert(1)']) rejects({ PUBLIC_URL: value }, 'PUBLIC_URL');
    const c = loadConfig({ PUBLIC_URL: 'http://chat.example.com:8080/' });
    assert.equal(c.publicUrl, 'http://chat.example.com:8080');
    assert.deepEqual(c.allowedOrigins, ['http://chat.example.com:8080']);
  });

  test('ALLOWED_ORIGINS: each entry is an http(s) origin; a trailing slash or a default port is normalised, anything else refused by name', () => {
    assert.deepEqual(loadConfig({ ALLOWED_ORIGINS: 'https://App.example.com/, http://b.example:80, http://localhost:5173' }).allowedOrigins, [
      'https://app.example.com',
      'http://b.example',
      'http://localhost:5173',
    ]);
    for (const entry of ['*', 'app.example.com', 'https://app.example.com/console', 'ftp://app.example.com', 'null', 'https://app.example.com/?x=1', 'https://u:p@app.example.com']) {
      assert.throws(
        () => loadConfig({ ALLOWED_ORIGINS: `https://ok.example, ${entry}` }),
        (err: unknown) => err instanceof ConfigError && /\bALLOWED_ORIGINS\b/.test(err.message) && err.message.includes(`"${entry}"`),
        entry,
      );
    }
  });

  test('PORT is a decimal whole number 0-65535 (0: a port the OS picks); blanks, hex and exponents are refused', () => {
    for (const value of [' ', '\t', '0x10', '1e3', '80.5', '-1', '+80', '65536']) rejects({ PORT: value }, 'PORT');
    assert.equal(loadConfig({ PORT: '0' }).port, 0);
    assert.equal(loadConfig({ PORT: '443' }).port, 443);
  });

  test('durations have maximums: Node clamps a timer over 2^31-1 ms to 1 ms, and a lifetime past year 275760 is no date', () => {
    // WS_AUTH_TIMEOUT_MS=3000000000 closed every socket after 1 ms; a huge TTL crashed the start (RangeError) or every login (500).
    rejects({ WS_AUTH_TIMEOUT_MS: '3000000000' }, 'WS_AUTH_TIMEOUT_MS');
    rejects({ AI_FIRST_TOKEN_TIMEOUT_MS: '2147483648' }, 'AI_FIRST_TOKEN_TIMEOUT_MS');
    rejects({ AI_ANSWER_TIMEOUT_MS: '99999999999999' }, 'AI_ANSWER_TIMEOUT_MS');
    rejects({ ACCESS_TOKEN_TTL_SECONDS: '99999999999999' }, 'ACCESS_TOKEN_TTL_SECONDS');
    rejects({ REFRESH_TOKEN_TTL_SECONDS: '99999999999999' }, 'REFRESH_TOKEN_TTL_SECONDS');
    // A generation's limit becomes a timer in milliseconds, with the retention added (the stream buffer's expiry).
    rejects({ CHAT_MAX_STREAM_SECONDS: '2147484' }, 'CHAT_MAX_STREAM_SECONDS');
    rejects({ CHAT_STREAM_RETENTION_SECONDS: '2147484' }, 'CHAT_STREAM_RETENTION_SECONDS');
    const c = loadConfig({ WS_AUTH_TIMEOUT_MS: '2147483647', REFRESH_TOKEN_TTL_SECONDS: String(10 * 365 * 24 * 3600) });
    assert.equal(c.realtime.authTimeoutMs, 2 ** 31 - 1);
    assert.equal(c.auth.refreshTtl, 315_360_000);
  });

  test('every _MS and _SECONDS variable the docs list refuses a value past what a timer or a date can hold', () => {
    const docs = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8').split('## Benchmarks only')[0]!;
    const names = new Set([...docs.matchAll(/`([A-Z][A-Z0-9_]*_(MS|SECONDS))`/g)].map((m) => m[1]!));
    assert.ok(names.size > 30, `found ${names.size} names`);
    for (const name of names) {
      const value = name.endsWith('_MS') ? '2147483648' : '315360001';
      rejects({ [name]: value }, name);
    }
  });

  test('counts have maximums too, and every number is written in decimal digits', () => {
    rejects({ CHAT_MAX_MESSAGE_CHARS: '100001' }, 'CHAT_MAX_MESSAGE_CHARS');
    rejects({ TOOLS_MAX_STEPS: '101' }, 'TOOLS_MAX_STEPS');
    rejects({ WS_MAX_CONNECTIONS_PER_USER: ' ' }, 'WS_MAX_CONNECTIONS_PER_USER');
    rejects({ RATE_LIMIT_USER_RPM: '1e3' }, 'RATE_LIMIT_USER_RPM');
    rejects({ KNOWLEDGE_MIN_SIMILARITY: ' ' }, 'KNOWLEDGE_MIN_SIMILARITY');
    rejects({ AI_CIRCUIT_FAILURES: '99999999999999' }, 'AI_CIRCUIT_FAILURES');
    assert.equal(loadConfig({ KNOWLEDGE_MIN_SIMILARITY: '-0.5' }).knowledge.minSimilarity, -0.5);
    assert.equal(loadConfig({ WEBHOOKS_RETRY_SCALE: '0.01' }).webhooks.retryScale, 0.01);
  });

  test('cron patterns are checked at load: a bad one stops the start naming the variable, not a croner TypeError after migrations', () => {
    rejects({ SCHEDULES: 'usage.rollup=every minute' }, 'SCHEDULES', 'usage.rollup');
    rejects({ SCHEDULES: 'usage.rollup=*/10 * * * *;files.expire-uploads=61 * * * *' }, 'SCHEDULES', 'files.expire-uploads');
    rejects({ SCHEDULES: 'usage.rollup=0 0 31 2 *' }, 'SCHEDULES');
    for (const value of ['x x x x x', 'bad cron', '* * * * * * *']) {
      assert.throws(
        () => loadConfig({ NOTIFICATIONS_DIGEST_CRON: value }),
        (err: unknown) => err instanceof ConfigError && /NOTIFICATIONS_DIGEST_CRON: .*cron pattern/.test(err.message) && !/Too small/.test(err.message),
        value,
      );
    }
    const c = loadConfig({ SCHEDULES: 'usage.rollup=*/10 * * * *; usage.abuse-check=off; http.purge-idempotency-keys=30 */2 * * * *', NOTIFICATIONS_DIGEST_CRON: '0 * * * *' });
    assert.deepEqual(c.jobs.scheduleOverrides, { 'usage.rollup': '*/10 * * * *', 'usage.abuse-check': 'off', 'http.purge-idempotency-keys': '30 */2 * * * *' });
    assert.equal(c.notifications.digestCron, '0 * * * *');
  });

  test('SCHEDULES naming no task (a typo) is refused with the list of tasks, not ignored', () => {
    assert.throws(
      () => loadConfig({ SCHEDULES: 'nosuchtask=off' }),
      (err: unknown) => err instanceof ConfigError && /\bSCHEDULES\b.*"nosuchtask"/.test(err.message) && /usage\.rollup/.test(err.message) && /notifications\.digest/.test(err.message),
    );
  });

  test('every boolean takes true/false, 1/0, yes/no, as the docs say', () => {
    assert.equal(loadConfig({ METERING_ENABLED: '0' }).usage.enabled, false);
    assert.equal(loadConfig({}).usage.enabled, true);
    rejects({ METERING_ENABLED: 'off' }, 'METERING_ENABLED');
    // Metering's numbers as every other's: no blank-as-0, and a maximum.
    rejects({ USAGE_MAX_PENDING: ' ' }, 'USAGE_MAX_PENDING');
    rejects({ ABUSE_KEY_BURST: '1e3' }, 'ABUSE_KEY_BURST');
    assert.equal(loadConfig({ CONSOLE_ENABLED: '0' }).console.enabled, false);
    assert.equal(loadConfig({ CONSOLE_ENABLED: 'yes' }).console.enabled, true);
    assert.equal(loadConfig({ MODERATION_URL: 'https://api.openai.com/v1', MODERATION_FAIL_OPEN: 'yes' }).safety.moderation!.failOpen, true);
    assert.equal(loadConfig({ MODERATION_URL: 'https://api.openai.com/v1', MODERATION_FAIL_OPEN: '0' }).safety.moderation!.failOpen, false);
    rejects({ CONSOLE_ENABLED: 'maybe' }, 'CONSOLE_ENABLED');
    rejects({ MODERATION_FAIL_OPEN: 'on' }, 'MODERATION_FAIL_OPEN');
  });

  test('settings that contradict each other are refused naming both', () => {
    rejects({ AI_RETRY_BASE_MS: '20000', AI_RETRY_MAX_MS: '10000' }, 'AI_RETRY_BASE_MS', 'AI_RETRY_MAX_MS');
    rejects({ AI_RETRY_MAX_MS: '400' }, 'AI_RETRY_BASE_MS', 'AI_RETRY_MAX_MS');
    rejects({ TOOLS_DEFAULT_MAX_STEPS: '30' }, 'TOOLS_DEFAULT_MAX_STEPS', 'TOOLS_MAX_STEPS');
    rejects({ TOOLS_DEFAULT_MAX_STEPS: '8', TOOLS_MAX_STEPS: '5' }, 'TOOLS_DEFAULT_MAX_STEPS', 'TOOLS_MAX_STEPS');
    const c = loadConfig({ AI_RETRY_BASE_MS: '10000', TOOLS_DEFAULT_MAX_STEPS: '25' });
    assert.equal(c.ai.retryBaseMs, c.ai.retryMaxMs);
    assert.equal(c.tools.defaultMaxSteps, c.tools.maxSteps);
  });

  test('every bad variable is named at once', () => {
    rejects({ PORT: 'abc', SMTP_URL: 'ftp://mail', NODE_ENV: 'staging' }, 'PORT', 'SMTP_URL', 'NODE_ENV');
  });

  test('OAuth credentials come in pairs', () => {
    rejects({ GITHUB_CLIENT_ID: 'id' }, 'GITHUB_CLIENT_ID', 'GITHUB_CLIENT_SECRET');
    rejects({ GOOGLE_CLIENT_SECRET: 'secret' }, 'GOOGLE_CLIENT_ID', 'GOOGLE_CLIENT_SECRET');
    rejects({ OIDC_CLIENT_ID: 'id', OIDC_CLIENT_SECRET: 'secret' }, 'OIDC_ISSUER');
  });

  test('SMS credentials come as a set; without them there is no SMS, and Slack has no bot', () => {
    assert.equal(loadConfig({}).notifications.sms, null);
    assert.deepEqual(loadConfig({}).notifications.slack, { botToken: null, apiUrl: 'https://slack.com/api' });
    rejects({ SMS_ACCOUNT_SID: 'AC1' }, 'SMS_AUTH_TOKEN', 'SMS_FROM');
    rejects({ SMS_ACCOUNT_SID: 'AC1', SMS_AUTH_TOKEN: 'x', SMS_FROM: '+15005550006', SMS_PROVIDER_URL: 'not a url' }, 'SMS_PROVIDER_URL');
    const c = loadConfig({ SMS_ACCOUNT_SID: 'AC1', SMS_AUTH_TOKEN: 'x', SMS_FROM: '+15005550006', SMS_PROVIDER_URL: 'http://sms.local/', SLACK_BOT_TOKEN: 'xoxb-1' });
    assert.deepEqual(c.notifications.sms, { providerUrl: 'http://sms.local', accountSid: 'AC1', authToken: 'x', from: '+15005550006' });
    assert.equal(c.notifications.slack.botToken, 'xoxb-1');
  });

  test('configured OAuth providers are listed', () => {
    const c = loadConfig({
      GITHUB_CLIENT_ID: 'gh-id',
      GITHUB_CLIENT_SECRET: 'gh-secret',
      MICROSOFT_CLIENT_ID: 'ms-id',
      MICROSOFT_CLIENT_SECRET: 'ms-secret',
      MICROSOFT_TENANT: 'contoso',
      OIDC_ISSUER: 'https://sso.example.com',
      OIDC_NAME: 'corp',
      OIDC_CLIENT_ID: 'o-id',
      OIDC_CLIENT_SECRET: 'o-secret',
    });
    const byId = Object.fromEntries(c.auth.oauth.providers.map((p) => [p.id, p]));
    assert.deepEqual(Object.keys(byId).sort(), ['corp', 'github', 'microsoft']);
    assert.equal(byId.corp!.issuer, 'https://sso.example.com');
    assert.equal(byId.microsoft!.issuer, 'https://login.microsoftonline.com/contoso/v2.0');
    assert.equal(byId.github!.kind, 'github');
    assert.equal(byId.github!.clientSecret, 'gh-secret');
  });
});

describe('loadConfig: blob storage', () => {
  test('files go under the data directory by default; a temporary folder for memory://', () => {
    assert.deepEqual(loadConfig({ PARLEY_DATA_DIR: '/srv/parley' }).storage, { kind: 'disk', dir: '/srv/parley/files' });
    assert.deepEqual(loadConfig({ PARLEY_DATA_DIR: 'memory://' }).storage, { kind: 'disk', dir: undefined });
  });

  test('S3_BUCKET chooses S3; path-style addressing follows S3_ENDPOINT unless set', () => {
    const minio = loadConfig({ S3_ENDPOINT: 'http://minio:9000', S3_BUCKET: 'parley', S3_ACCESS_KEY_ID: 'k', S3_SECRET_ACCESS_KEY: 's', S3_PUBLIC_ENDPOINT: 'http://localhost:9000' }).storage;
    assert.deepEqual(minio, { kind: 's3', endpoint: 'http://minio:9000', bucket: 'parley', region: 'us-east-1', accessKeyId: 'k', secretAccessKey: 's', forcePathStyle: true, prefix: undefined, publicEndpoint: 'http://localhost:9000', requestTimeoutMs: 30_000 });
    const aws = loadConfig({ S3_BUCKET: 'parley-prod', S3_REGION: 'eu-west-3', S3_PREFIX: 'tenant-a/' }).storage;
    assert.deepEqual(aws, { kind: 's3', endpoint: undefined, bucket: 'parley-prod', region: 'eu-west-3', accessKeyId: undefined, secretAccessKey: undefined, forcePathStyle: false, prefix: 'tenant-a/', publicEndpoint: undefined, requestTimeoutMs: 30_000 });
    assert.equal((loadConfig({ S3_ENDPOINT: 'http://minio:9000', S3_BUCKET: 'parley', S3_FORCE_PATH_STYLE: 'false' }).storage as { forcePathStyle: boolean }).forcePathStyle, false);
    assert.equal((loadConfig({ S3_BUCKET: 'parley', S3_REQUEST_TIMEOUT_MS: '5000' }).storage as { requestTimeoutMs: number }).requestTimeoutMs, 5_000);
  });

  test('S3 settings without a bucket, half a key pair, or a bad bucket or prefix are errors naming the variable', () => {
    rejects({ S3_ENDPOINT: 'http://minio:9000' }, 'S3_BUCKET');
    rejects({ S3_BUCKET: 'parley', S3_ACCESS_KEY_ID: 'k' }, 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY');
    rejects({ S3_BUCKET: 'ab' }, 'S3_BUCKET');
    rejects({ S3_BUCKET: 'parley', S3_PREFIX: '../up' }, 'S3_PREFIX');
    rejects({ S3_ENDPOINT: 'not a url', S3_BUCKET: 'parley' }, 'S3_ENDPOINT');
    rejects({ FILES_DOWNLOAD_REDIRECT: 'true' }, 'FILES_DOWNLOAD_REDIRECT', 'S3_BUCKET');
    rejects({ S3_PUBLIC_ENDPOINT: 'http://localhost:9000' }, 'S3_BUCKET');
  });
});
