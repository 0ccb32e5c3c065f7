// npm run bench:scale [-- section…] — how a cost grows with the data behind it:
// each section grows one measured thing by 10× steps and prints the cost at
// each size beside the smallest, so the curve is visible. Sections:
//   messages  a chat turn in a conversation of 10 … 10,000 messages
//   reports   the reports and admin views at 100k … 10M usage events and
//             1k … 100k users (bench/scale-reports.ts; long). PGlite by
// default; PostgreSQL + Redis when DATABASE_URL/REDIS_URL are set. A fake
// OpenAI upstream answers at once, in a process of its own.
import { ask, child } from './ipc.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { uuidv7 } from 'uuidv7';
import { tokensOf } from '../src/modules/chat/message-tokens.ts';
import { messages } from '../src/modules/chat/schema.ts';
import { startApp, type TestApp } from '../test/support/app.ts';
import { reportsScale, reportsTable } from './scale-reports.ts';

interface Section {
  /** What grows, for the heading. */
  title: string;
  /** Markdown lines: the table of cost by size. */
  run(ctx: Context): Promise<string[]>;
}

interface Context {
  upstreamUrl: string;
  backend: 'embedded' | 'postgres';
}

const SECTIONS: Record<string, Section> = {
  messages: { title: 'A chat turn by conversation length', run: messagesSection },
  // Usage events and users: the reports and admin views (bench/scale-reports.ts, also `npm run bench:scale:reports`).
  reports: { title: 'Reports and admin views by usage events and users', run: async ({ backend }) => reportsTable(await reportsScale({ backend, log: () => {} })) },
};

// ---------------------------------------------------------------- shared

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const f = (n: number) => n.toFixed(1);

const agent = new Agent({ keepAlive: true });

/** One POST, timed from the request to the end of the response; throws unless `expect`. */
function timedPost(url: string, headers: Record<string, string>, body: string, expect: number): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { ...headers, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => (res.statusCode === expect ? resolve(performance.now() - t0) : reject(new Error(`status ${res.statusCode}: ${text.slice(0, 300)}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A sized table: p50/p99 per size and their ratio to the smallest size's. */
function table(unit: string, sizes: number[], samples: Map<number, number[]>): string[] {
  const base = samples.get(sizes[0]!)!;
  const lines = [`| ${unit} | turns | p50 ms | p99 ms | p50 ÷ smallest | p99 ÷ smallest |`, '|--:|--:|--:|--:|--:|--:|'];
  for (const size of sizes) {
    const xs = samples.get(size)!;
    lines.push(`| ${size.toLocaleString('en')} | ${xs.length} | ${f(pct(xs, 50))} | ${f(pct(xs, 99))} | ${(pct(xs, 50) / pct(base, 50)).toFixed(2)} | ${(pct(xs, 99) / pct(base, 99)).toFixed(2)} |`);
  }
  return lines;
}

// ---------------------------------------------------------------- messages

const MESSAGE_SIZES = [10, 100, 1_000, 10_000];
/** Turns timed per size, one size after the other, turn by turn. */
const TURNS = 120;
/** A local model's window (what Ollama and most compatible servers give by default is no larger): full from about 70 messages on. */
const WINDOW = 8192;
const MAX_OUTPUT = 1024;

const WORDS = (
  'the of and to in is you that it he was for on are as with his they at be this have from or one had by word but not what all were we when your can said ' +
  'there use an each which she do how their if will up other about out many then them these so some her would make like him into time has look two more ' +
  'write go see number no way could people my than first water been call who oil its now find long down day did get come made may part database query ' +
  'index branch context window token message answer question model stream server process cluster deploy latency budget'
).split(' ');

/** A deterministic text of a few hundred characters, like a chat message. */
function sentence(seed: number): string {
  let x = seed * 2654435761;
  const next = () => ((x = (x * 1103515245 + 12345) >>> 0), x);
  const target = 200 + (next() % 400);
  let s = '';
  while (s.length < target) s += (s ? ' ' : '') + WORDS[next() % WORDS.length];
  return `${s[0]!.toUpperCase()}${s.slice(1)}.`;
}

/** A conversation's history written straight into the table, in batches: alternating questions and answers, each with its text's token count. */
async function grow(t: TestApp, userId: string, conversationId: string, size: number): Promise<string> {
  let parentId: string | null = null;
  let batch: Array<typeof messages.$inferInsert> = [];
  const createdAt = Date.now() - size * 1000;
  for (let i = 0; i < size; i++) {
    const role = i % 2 === 0 ? ('user' as const) : ('assistant' as const);
    const text = sentence(size * 100_003 + i);
    const content = [{ type: 'text' as const, text }];
    const id = uuidv7();
    batch.push({ id, conversationId, userId, parentId, role, content, text, tokens: await tokensOf({ role, content, text }, t.services.ai.tokens), status: 'complete', createdAt: new Date(createdAt + i * 1000), completedAt: new Date(createdAt + i * 1000) });
    parentId = id;
    if (batch.length === 500) {
      await t.deps.db.insert(messages).values(batch);
      batch = [];
    }
  }
  if (batch.length) await t.deps.db.insert(messages).values(batch);
  await t.services.messages.setCurrentLeaf(conversationId, parentId!);
  return parentId!;
}

async function messagesSection(ctx: Context): Promise<string[]> {
  const config = join(mkdtempSync(join(tmpdir(), 'parley-bench-scale-')), 'ai.json');
  writeFileSync(config, JSON.stringify({ models: [{ id: 'openai:bench-8k', contextWindow: WINDOW, maxOutputTokens: MAX_OUTPUT }] }));
  const t = await startApp({
    backend: ctx.backend,
    env: {
      OPENAI_API_KEY: 'sk-bench',
      OPENAI_BASE_URL: `${ctx.upstreamUrl}/v1`,
      PARLEY_AI_CONFIG: config,
      DEFAULT_MODEL: 'openai:bench-8k',
      AUTH_RATE_LIMIT_PER_IP: '1000000000',
      RATE_LIMIT_ENABLED: 'false',
    },
  });
  try {
    const reg = await t.api('POST', '/v1/auth/register', { body: { email: `bench-${Date.now()}@example.com`, password: 'bench password 123' } });
    const userId: string = reg.body.user.id;
    const { secret } = await t.services.apiKeys.create(userId, { name: 'bench', scopes: ['chat'] });
    const headers = { authorization: `Bearer ${secret}` };
    const conversations = new Map<number, { url: string; body: string }>();
    for (const size of MESSAGE_SIZES) {
      process.stderr.write(`  messages: growing a conversation to ${size}…\n`);
      const c = await t.api('POST', '/v1/conversations', { headers, body: { title: `${size} messages` } });
      if (c.status !== 201) throw new Error(`conversation: ${c.status} ${c.text}`);
      const leaf = await grow(t, userId, c.body.id, size);
      // Each turn edits the next question (posted under the same leaf): the branch it answers stays `size` long however many turns are timed.
      conversations.set(size, { url: `${t.url}/v1/conversations/${c.body.id}/messages`, body: JSON.stringify({ content: sentence(7), parentId: leaf }) });
    }
    const samples = new Map<number, number[]>(MESSAGE_SIZES.map((s) => [s, []]));
    for (const size of MESSAGE_SIZES) for (let i = 0; i < 3; i++) await timedPost(conversations.get(size)!.url, headers, conversations.get(size)!.body, 201); // warm-up
    // Turn by turn across the sizes, so drift (other work on the machine) hits every size alike.
    process.stderr.write(`  messages: ${TURNS} turns at each size…\n`);
    for (let i = 0; i < TURNS; i++) {
      for (const size of MESSAGE_SIZES) {
        const { url, body } = conversations.get(size)!;
        samples.get(size)!.push(await timedPost(url, headers, body, 201));
      }
    }
    return [
      `Non-streaming turns (POST …/messages, the finished answer back), one at a time, against an instant fake upstream; model window ${WINDOW} tokens, ${MAX_OUTPUT} kept for the reply; ` +
        'history of alternating questions and answers of 200–600 characters (about 60–150 tokens each).',
      '',
      ...table('messages in the branch', MESSAGE_SIZES, samples),
    ];
  } finally {
    await t.close();
  }
}

// ---------------------------------------------------------------- main

async function main() {
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const names = wanted.length ? wanted : Object.keys(SECTIONS);
  for (const n of names) if (!SECTIONS[n]) throw new Error(`unknown section "${n}"; one of: ${Object.keys(SECTIONS).join(', ')}`);
  const upstream = await child(new URL('./upstream.ts', import.meta.url));
  await ask(upstream.proc, { defaults: { reply: 'Sure: here is a short answer to that.' } });
  const backend = process.env.DATABASE_URL ? 'postgres' : 'embedded';
  const out = [`Parley scale bench — Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model.trim()}, ${backend === 'postgres' ? 'PostgreSQL + Redis' : 'PGlite'}, load average ${loadavg()[0]!.toFixed(1)} at start`, ''];
  try {
    for (const n of names) {
      const lines = await SECTIONS[n]!.run({ upstreamUrl: upstream.first.url, backend });
      out.push(`### ${SECTIONS[n]!.title}`, '', ...lines, '');
    }
    process.stdout.write(out.join('\n'));
  } finally {
    upstream.proc.kill();
  }
}

await main();
