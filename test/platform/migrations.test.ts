import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test, type TestContext } from 'node:test';
import { sql } from 'drizzle-orm';
import { openDatabase, type Database } from '../../src/platform/db/database.ts';
import { createUsageRecorder } from '../../src/modules/usage/recorder.ts';
import { createSearch } from '../../src/modules/chat/search.ts';
import { createResponseStore } from '../../src/modules/ai/responses-store.ts';
import { previousSigning } from '../../src/modules/webhooks/service.ts';
import { webhookEndpoints } from '../../src/modules/webhooks/schema.ts';
import { freshPostgresDatabase } from '../support/app.ts';

const migrationsDir = fileURLToPath(new URL('../../db/migrations', import.meta.url));
const migrationCount = readdirSync(migrationsDir).filter((f) => f.endsWith('.sql')).length;

/** A copy of db/migrations whose journal stops just before `tag`: a database as an older release left it. */
/** Migrates the database up to the migration `tag` (not included): the state an older release left. */
async function migrateUpTo(database: Database, tag: string): Promise<void> {
  const folder = mkdtempSync(path.join(tmpdir(), 'parley-migrations-'));
  const journal = JSON.parse(readFileSync(path.join(migrationsDir, 'meta/_journal.json'), 'utf8')) as { entries: { tag: string }[] };
  const stop = journal.entries.findIndex((e) => e.tag === tag);
  assert.ok(stop > 0, `${tag} is in the journal`);
  journal.entries = journal.entries.slice(0, stop);
  mkdirSync(path.join(folder, 'meta'));
  writeFileSync(path.join(folder, 'meta/_journal.json'), JSON.stringify(journal));
  for (const e of journal.entries) copyFileSync(path.join(migrationsDir, `${e.tag}.sql`), path.join(folder, `${e.tag}.sql`));
  try {
    await database.migrate(folder);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

const rowsOf = <T>(result: unknown) => (result as { rows: T[] }).rows;

/**
 * 0005 renames the combined request+response `bytes` to `bytes_out` and adds
 * `bytes_in` at 0, so every older row keeps its whole traffic in in + out.
 */
async function checkBytesSplitUpgrade(database: Database): Promise<void> {
  await migrateUpTo(database, '0005_api_request_bytes_split');
  const user = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
  // Above 2^32, so a narrowed column would show; the last row takes the old default.
  await database.db.execute(sql`
    insert into api_requests_daily (day, user_id, method, route, requests, bytes) values
      ('2026-01-05', ${user}, 'POST', '/v1/chat/completions', 12, 5000000123),
      ('2026-01-05', null, 'GET', '/v1/models', 3, 2048)`);
  await database.db.execute(sql`
    insert into api_requests_daily (day, user_id, method, route, requests) values ('2026-01-06', ${user}, 'GET', '/v1/models', 1)`);

  await database.migrate();
  const applied = rowsOf<{ n: number }>(await database.db.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`));
  assert.equal(applied[0]!.n, migrationCount);

  const columns = rowsOf<{ column_name: string }>(
    await database.db.execute(
      sql`select column_name from information_schema.columns where table_name = 'api_requests_daily' order by column_name`,
    ),
  ).map((c) => c.column_name);
  assert.deepEqual(columns, ['bytes_in', 'bytes_out', 'day', 'method', 'requests', 'route', 'user_id']);

  const read = async () =>
    rowsOf<Record<string, string | null>>(
      await database.db.execute(sql`
        select day::text, user_id::text, method, route, requests::text, bytes_in::text, bytes_out::text
        from api_requests_daily order by day, route`),
    );
  assert.deepEqual(await read(), [
    { day: '2026-01-05', user_id: user, method: 'POST', route: '/v1/chat/completions', requests: '12', bytes_in: '0', bytes_out: '5000000123' },
    { day: '2026-01-05', user_id: null, method: 'GET', route: '/v1/models', requests: '3', bytes_in: '0', bytes_out: '2048' },
    { day: '2026-01-06', user_id: user, method: 'GET', route: '/v1/models', requests: '1', bytes_in: '0', bytes_out: '0' },
  ]);

  // The recorder's own write: a new row, and an upsert that adds onto an old one.
  const recorder = createUsageRecorder(database.db, { flushIntervalMs: 60_000, maxBatch: 1_000, maxPending: 1_000 });
  recorder.countRequest({ userId: user, method: 'GET', route: '/v1/models', bytesIn: 4, bytesOut: 300, at: new Date('2026-01-07T10:00:00Z') });
  recorder.countRequest({ userId: user, method: 'GET', route: '/v1/models', bytesIn: 6, bytesOut: 400, at: new Date('2026-01-07T11:00:00Z') });
  recorder.countRequest({ userId: null, method: 'GET', route: '/v1/models', bytesIn: 5, bytesOut: 100, at: new Date('2026-01-05T12:00:00Z') });
  await recorder.close();
  const after = await read();
  assert.deepEqual(after[1], { day: '2026-01-05', user_id: null, method: 'GET', route: '/v1/models', requests: '4', bytes_in: '5', bytes_out: '2148' });
  assert.deepEqual(after[3], { day: '2026-01-07', user_id: user, method: 'GET', route: '/v1/models', requests: '2', bytes_in: '10', bytes_out: '700' });
  assert.equal(after.length, 4);
}

/** 0028 starts each user's file usage from the files they already have. */
async function checkFileUsageUpgrade(database: Database): Promise<void> {
  await migrateUpTo(database, '0028_files_usage');
  const [ada, bo, cy] = ['0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a01', '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a02', '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a03'];
  await database.db.execute(sql`insert into users (id, email) values (${ada}, 'ada@example.com'), (${bo}, 'bo@example.com'), (${cy}, 'cy@example.com')`);
  // Above 2^32 in all, so a narrowed sum would show.
  await database.db.execute(sql`
    insert into files (id, user_id, name, mime_type, size, sha256, storage_key)
    select gen_random_uuid(), u, 'f', 'text/plain', s, '', 'k' from (values (${ada}::uuid, 3000000000), (${ada}::uuid, 3000000005), (${bo}::uuid, 7)) v(u, s)`);
  await database.migrate();
  const usage = rowsOf<{ user_id: string; bytes: string; files: number }>(await database.db.execute(sql`select user_id::text, bytes::text, files from file_usage order by user_id`));
  assert.deepEqual(usage, [
    { user_id: ada, bytes: '6000000005', files: 2 },
    { user_id: bo, bytes: '7', files: 1 },
  ]);
}

/**
 * 0029 ties files, documents and knowledge collections to their project, its id going when the project goes:
 * rows naming a project deleted before it lose the id; a project deleted after it takes its id from them.
 */
async function checkProjectLinksUpgrade(database: Database): Promise<void> {
  await migrateUpTo(database, '0029_projects_set_null');
  const ada = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a01';
  const [kept, gone] = ['0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4b01', '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4b02'];
  await database.db.execute(sql`insert into users (id, email) values (${ada}, 'ada@example.com')`);
  await database.db.execute(sql`insert into projects (id, user_id, name) values (${kept}, ${ada}, 'Kept')`);
  for (const project of [kept, gone]) {
    await database.db.execute(sql`insert into files (id, user_id, project_id, name, mime_type, size, sha256, storage_key) values (gen_random_uuid(), ${ada}, ${project}, 'f', 'text/plain', 1, '', 'k')`);
    await database.db.execute(sql`insert into documents (id, owner_id, project_id, title, body) values (gen_random_uuid(), ${ada}, ${project}, 't', 'b')`);
    await database.db.execute(sql`insert into knowledge_collections (id, user_id, project_id, name) values (gen_random_uuid(), ${ada}, ${project}, 'c')`);
  }
  await database.migrate();
  const projectsOf = async () =>
    rowsOf<{ t: string; project_id: string | null }>(
      await database.db.execute(sql`
        select 'files' as t, project_id::text from files union all select 'documents', project_id::text from documents
        union all select 'collections', project_id::text from knowledge_collections order by 1, 2 nulls last`),
    );
  const both = (first: string | null) => ['collections', 'documents', 'files'].flatMap((t) => [{ t, project_id: first }, { t, project_id: null }]);
  assert.deepEqual(await projectsOf(), both(kept));
  await database.db.execute(sql`delete from projects where id = ${kept}`);
  assert.deepEqual(await projectsOf(), both(null));
  assert.equal(rowsOf(await database.db.execute(sql`select 1 from files`)).length, 2, 'the rows stay');
}

/**
 * 0030 replaces the full-text GIN indexes over every user's rows with ones that lead with the user (btree_gin),
 * built over the rows already there, and orders a user's messages by time: search finds what was written before.
 */
async function checkSearchPerUserUpgrade(database: Database): Promise<void> {
  await migrateUpTo(database, '0030_search_per_user');
  const [ada, bo] = ['0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a01', '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a02'];
  const [adaChat, boChat] = ['0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4c01', '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4c02'];
  await database.db.execute(sql`insert into users (id, email) values (${ada}, 'ada@example.com'), (${bo}, 'bo@example.com')`);
  await database.db.execute(sql`insert into conversations (id, user_id, title) values (${adaChat}, ${ada}, 'Glaciers'), (${boChat}, ${bo}, 'Glaciers too')`);
  await database.db.execute(sql`
    insert into messages (id, conversation_id, user_id, role, content, text)
    select gen_random_uuid(), c, u, 'user', '[]'::jsonb, t from (values (${adaChat}::uuid, ${ada}::uuid, 'glaciers carve valleys'), (${adaChat}::uuid, ${ada}::uuid, 'moraines'), (${boChat}::uuid, ${bo}::uuid, 'glaciers calve icebergs')) v(c, u, t)`);
  await database.migrate();

  const indexes = rowsOf<{ name: string; def: string }>(
    await database.db.execute(sql`
      select indexname as name, regexp_replace(indexdef, '^.* USING ', '') as def from pg_indexes
      where tablename in ('messages', 'conversations', 'knowledge_chunks')
        and (indexdef like '%search_vector%' or indexname in ('messages_user_idx', 'messages_user_created_idx', 'knowledge_chunks_user_idx'))
      order by 1`),
  );
  assert.deepEqual(indexes, [
    { name: 'conversations_user_search_idx', def: 'gin (user_id, search_vector)' },
    { name: 'knowledge_chunks_user_search_idx', def: 'gin (user_id, search_vector)' },
    { name: 'messages_user_created_idx', def: 'btree (user_id, created_at, id)' },
    { name: 'messages_user_search_idx', def: 'gin (user_id, search_vector)' },
  ]);
  const hits = await createSearch(database.db).search(ada, { q: 'glacier', limit: 10 });
  assert.deepEqual(hits.map((h) => [h.type, h.conversationId, h.snippet]).sort(), [
    ['conversation', adaChat, '<mark>Glaciers</mark>'],
    ['message', adaChat, '<mark>glaciers</mark> carve valleys'],
  ]);
}

/**
 * 0033 stores Responses API turns one by one: the rows before it, each holding its whole input, are marked so,
 * and a chain of them is read back as it was (a row's own input, not its earlier turns a second time).
 */
async function checkResponsesTurnByTurnUpgrade(database: Database): Promise<void> {
  await migrateUpTo(database, '0033_ai_responses_turn_by_turn');
  const ada = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a01';
  const say = (role: string, content: string) => ({ type: 'message', role, content });
  await database.db.execute(sql`insert into users (id, email) values (${ada}, 'ada@example.com')`);
  await database.db.execute(sql`
    insert into ai_responses (id, user_id, model, status, previous_response_id, input, output, response) values
      ('resp_1', ${ada}, 'openai:gpt-4o-mini', 'completed', null, ${JSON.stringify([say('user', 'I am Ada.')])}, ${JSON.stringify([say('assistant', 'Hi Ada.')])}, '{}'),
      ('resp_2', ${ada}, 'openai:gpt-4o-mini', 'completed', 'resp_1',
       ${JSON.stringify([say('user', 'I am Ada.'), say('assistant', 'Hi Ada.'), say('user', 'Where?')])}, ${JSON.stringify([say('assistant', 'Oslo.')])}, '{}')`);
  await database.migrate();
  assert.deepEqual(rowsOf(await database.db.execute(sql`select id, input_whole from ai_responses order by id`)), [
    { id: 'resp_1', input_whole: true },
    { id: 'resp_2', input_whole: true },
  ]);
  assert.deepEqual(await createResponseStore(database.db).conversation('resp_2', ada), [say('user', 'I am Ada.'), say('assistant', 'Hi Ada.'), say('user', 'Where?'), say('assistant', 'Oslo.')]);
  const [column] = rowsOf<{ column_default: string | null }>(await database.db.execute(sql`select column_default from information_schema.columns where table_name = 'ai_responses' and column_name = 'input_whole'`));
  assert.equal(column!.column_default, null, 'a new row says which it is');
}

/**
 * 0036 keeps every secret a rotation replaced, each with its own expiry: an endpoint's previous secret becomes the
 * first of its list, with its expiry to the millisecond, and still signs; an endpoint without one has none.
 */
async function checkWebhookPreviousSecretsUpgrade(database: Database): Promise<void> {
  await migrateUpTo(database, '0036_webhook_previous_secrets');
  const ada = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a01';
  const [rotated, plain] = ['0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4d01', '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4d02'];
  const until = new Date(Date.now() + 3_600_000).toISOString();
  await database.db.execute(sql`insert into users (id, email) values (${ada}, 'ada@example.com')`);
  await database.db.execute(sql`
    insert into webhook_endpoints (id, user_id, url, events, secret_enc, previous_secret_enc, previous_secret_until) values
      (${rotated}, ${ada}, 'https://example.com/a', '{file.ready}', 'current', 'previous', ${until}),
      (${plain}, ${ada}, 'https://example.com/b', '{file.ready}', 'current', null, null)`);
  await database.migrate();
  const rows = await database.db.select().from(webhookEndpoints).orderBy(webhookEndpoints.id);
  assert.deepEqual(
    rows.map((r) => r.previousSecrets),
    [[{ secretEnc: 'previous', until }], []],
  );
  assert.deepEqual(previousSigning(rows[0]!), [{ secretEnc: 'previous', until }], 'it still signs');
}

/** Runs an upgrade check on a new PGlite database, and on a new PostgreSQL one where DATABASE_URL is set. */
async function onBoth(t: TestContext, check: (database: Database) => Promise<void>): Promise<void> {
  await t.test('PGlite', async () => {
    const database = openDatabase({ dataDir: 'memory://' });
    try {
      await check(database);
    } finally {
      await database.close();
    }
  });
  await t.test('PostgreSQL', { skip: !process.env.DATABASE_URL && 'DATABASE_URL not set' }, async () => {
    const fresh = await freshPostgresDatabase();
    const database = openDatabase({ url: fresh.url, dataDir: 'memory://' });
    try {
      await check(database);
    } finally {
      await database.close();
      await fresh.drop();
    }
  });
}

describe('migrations', () => {
  test('PGlite: applied once, re-running is a no-op', async () => {
    const database = openDatabase({ dataDir: 'memory://' });
    await database.migrate();
    await database.migrate();
    const rows = await database.db.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`);
    assert.equal((rows as unknown as { rows: { n: number }[] }).rows[0]!.n, migrationCount);
    await database.close();
  });

  test('every foreign key has an index that leads with its columns: deleting a parent row finds its children without a scan', async () => {
    const database = openDatabase({ dataDir: 'memory://' });
    try {
      await database.migrate();
      const unindexed = rowsOf<{ fk: string }>(
        await database.db.execute(sql`
          select c.conrelid::regclass::text || ' (' || c.conname || ')' as fk
            from pg_constraint c
           where c.contype = 'f'
             and not exists (
               select 1 from pg_index i
                where i.indrelid = c.conrelid
                  -- Whole, or partial to the rows where the key is set (which is every row a cascade looks for).
                  and (i.indpred is null or pg_get_expr(i.indpred, i.indrelid) ~* '^\\(?\\w+ IS NOT NULL\\)?$')
                  and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
                  and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey)
           order by 1`),
      ).map((r) => r.fk);
      assert.deepEqual(unindexed, []);
    } finally {
      await database.close();
    }
  });

  test('PostgreSQL: instances migrating at the same time take turns', { skip: !process.env.DATABASE_URL && 'DATABASE_URL not set' }, async () => {
    const fresh = await freshPostgresDatabase();
    const instances = [1, 2, 3].map(() => openDatabase({ url: fresh.url, dataDir: 'memory://' }));
    try {
      await Promise.all(instances.map((d) => d.migrate()));
      const rows = await instances[0]!.db.execute(sql`select count(*)::int as n from drizzle.__drizzle_migrations`);
      assert.equal((rows as unknown as { rows: { n: number }[] }).rows[0]!.n, migrationCount);
    } finally {
      await Promise.all(instances.map((d) => d.close()));
      await fresh.drop();
    }
  });

  test('0005 keeps the traffic of rows written before it, and rows written after it add up', async (t) => {
    await onBoth(t, checkBytesSplitUpgrade);
  });

  test("0028 starts each user's file usage from the files they have", async (t) => {
    await onBoth(t, checkFileUsageUpgrade);
  });

  test("0029 ties files, documents and collections to their project: a deleted project's id goes from them", async (t) => {
    await onBoth(t, checkProjectLinksUpgrade);
  });

  test("0030 indexes search by user (btree_gin) over the rows already there: search finds them, and only the user's", async (t) => {
    await onBoth(t, checkSearchPerUserUpgrade);
  });

  test('0033 marks the Responses API rows before it as holding their whole input: their chains read back as they were', async (t) => {
    await onBoth(t, checkResponsesTurnByTurnUpgrade);
  });

  test("0036 makes an endpoint's previous secret the first of its replaced secrets, signing until the same time", async (t) => {
    await onBoth(t, checkWebhookPreviousSecretsUpgrade);
  });
});
