import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config.ts';

// No Docker engine runs here, so the compose file is checked for what it promises rather than run;
// test/cluster/cluster.test.ts runs the same nginx config in front of real instances.
const root = new URL('../../', import.meta.url);
const compose = parse(readFileSync(new URL('docker-compose.yml', root), 'utf8'), { merge: true });
/** A service's environment as compose gives it with nothing set in .env: each `${X:-default}` its default (a master key made up). */
const resolved = (env: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v).replace(/\$\{PARLEY_MASTER_KEY[^}]*\}/, Buffer.alloc(32, 1).toString('base64')).replace(/\$\{(\w+):-([^}]*)\}/g, '$2')]));

test('docker-compose.yml: PostgreSQL, Redis, MinIO, nginx in front of N API instances and M workers', () => {
  const s = compose.services;
  assert.deepEqual(Object.keys(s).sort(), ['api', 'migrate', 'minio', 'minio-bucket', 'nginx', 'postgres', 'redis', 'worker']);
  assert.match(s.postgres.image, /^pgvector\/pgvector:pg16$/, 'PostgreSQL with the vector extension, for knowledge search');
  assert.equal(s.migrate.depends_on['minio-bucket'].condition, 'service_completed_successfully', 'the bucket exists before any instance starts');
  assert.deepEqual(s.api.command, ['serve']);
  assert.deepEqual(s.worker.command, ['worker']);
  assert.deepEqual(s.migrate.command, ['migrate']);
  assert.ok(s.api.deploy.replicas >= 2, 'several API instances');
  assert.equal(s.api.depends_on.migrate.condition, 'service_completed_successfully', 'instances start after the migration');
  assert.ok(s.nginx.volumes.some((v: string) => v.startsWith('./deploy/nginx/nginx.conf:')), 'nginx runs the tested config');
  // nginx waits for an API instance that answers /ready, checked with the image's own Node.
  assert.equal(s.nginx.depends_on.api.condition, 'service_healthy');
  assert.deepEqual(s.api.healthcheck.test.slice(0, 3), ['CMD', 'node', '-e']);
  assert.match(s.api.healthcheck.test[3], /fetch\('http:\/\/127\.0\.0\.1:3000\/ready'\)/);
  const nginx = readFileSync(new URL('deploy/nginx/nginx.conf', root), 'utf8');
  assert.match(nginx, /server api:3000 .*\bresolve;/, 'and points it at the api service, looked up again as instances come and go');
  assert.match(nginx, /^\s*resolver 127\.0\.0\.11\b/m, "through Docker's DNS");
  // `resolve` is in open-source nginx from 1.27.3: an image pinned to an older line would refuse the file.
  const [major, minor] = /^nginx:(\d+)\.(\d+)/.exec(s.nginx.image)!.slice(1).map(Number);
  assert.ok(major! > 1 || minor! >= 28, s.nginx.image);
});

test("the documented scale (3 API instances, 2 workers) stays within PostgreSQL's connections", () => {
  const s = compose.services;
  assert.match(readFileSync(new URL('docker-compose.yml', root), 'utf8'), /--scale api=3 --scale worker=2/, 'the scale the file tells users to run');
  const config = loadConfig(resolved(s.api.environment));
  const processes = config.processes;
  assert.equal(processes, 1, 'one process per container: a count per CPU would multiply the connections by the host');
  // Each process: its pool and, at most, two listening connections (the queue's wake-ups, the outbox relay).
  const perProcess = config.databasePoolSize + 2;
  const instances = 3 + 2 + 1; // and the one-shot migrate
  const max = Number(s.postgres.command[s.postgres.command.indexOf('-c') + 1].split('=')[1]);
  assert.ok(instances * processes * perProcess <= max / 2, `${instances} × ${processes} × ${perProcess} within half of max_connections ${max}: room to scale`);
});

test('every instance gets the same valid configuration', () => {
  const env = compose.services.api.environment;
  assert.deepEqual(env, compose.services.worker.environment);
  assert.deepEqual(env, compose.services.migrate.environment);
  const config = loadConfig(resolved(env));
  assert.equal(config.databaseUrl, 'postgres://parley:parley@postgres:5432/parley');
  assert.equal(config.redisUrl, 'redis://redis:6379');
  assert.equal(config.trustProxy, true, 'behind nginx, per-IP limits need the forwarded address');
  assert.ok(config.masterKey, 'one master key for the whole cluster');
  assert.deepEqual(config.storage, { kind: 's3', endpoint: 'http://minio:9000', bucket: 'parley', region: 'us-east-1', accessKeyId: 'parley', secretAccessKey: 'parley-secret', forcePathStyle: true, prefix: undefined, publicEndpoint: undefined, requestTimeoutMs: 30_000 });
});

test('the Dockerfile runs the CLI with the image\'s Node and the locked production dependencies, with the templates and the bundle made after the sources are in', () => {
  const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8');
  const engines = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')).engines.node as string;
  const major = /FROM node:(\d+)/.exec(dockerfile)?.[1];
  assert.ok(major && Number(major) >= Number(/\d+/.exec(engines)![0]), `node:${major} satisfies engines ${engines}`);
  assert.match(dockerfile, /npm ci --omit=dev/);
  assert.match(dockerfile, /ENTRYPOINT \["node", "bin\/parley.js"\]/);
  // Both read the sources: made after COPY src, so the bundle is newer than every file it was made from.
  assert.ok(dockerfile.indexOf('RUN node src/platform/db/pglite.ts && node src/cli/bundle.ts') > dockerfile.indexOf('COPY src ./src'));
  // The embedded default writes ./data as the image's user, not root: a directory of its own, kept as a volume.
  assert.match(dockerfile, /RUN mkdir -m 0700 \/app\/data && chown node:node \/app\/data\nVOLUME \/app\/data\nUSER node\n/);
  assert.match(dockerfile, /WORKDIR \/app\n/);
  // Nothing of this machine's goes into the build context.
  assert.deepEqual(
    readFileSync(new URL('.dockerignore', root), 'utf8').split('\n').filter((l) => l && !l.startsWith('#')),
    ['.git', 'node_modules', 'data', '*.tmp.ts'],
  );
  // esbuild builds the bundle in a production install.
  assert.ok(JSON.parse(readFileSync(new URL('package.json', root), 'utf8')).dependencies.esbuild);
});
