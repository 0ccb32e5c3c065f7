import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { buildContext, DEFAULT_CONTEXT_WINDOW } from '../../../src/modules/ai/context.ts';
import { createTokenCounter } from '../../../src/modules/ai/token-counter.ts';
import { countTokens as o200kCount } from 'gpt-tokenizer';
import { countTokens as cl100kCount } from 'gpt-tokenizer/encoding/cl100k_base';
import { countMessageTokens, countPromptTokens, countTextTokens, PIECE_CHARS, textPieces, truncateTokens } from '../../../src/modules/ai/tokens.ts';
import type { ChatMessage } from '../../../src/modules/ai/types.ts';
import { loopTurns } from '../../support/loop-turns.ts';

const model = (contextWindow: number | null) => ({ model: 'gpt-4o-mini', contextWindow });
const user = (content: string): ChatMessage => ({ role: 'user', content });
const assistant = (content: string): ChatMessage => ({ role: 'assistant', content });
/** A message of exactly n tokens of text ("a" repeated is one token per " a"). */
const words = (n: number) => Array.from({ length: n }, () => ' a').join('');

describe('token counting', () => {
  test('counts with a real tokenizer, plus per-message framing', () => {
    assert.equal(countTextTokens('gpt-4o-mini', 'Hello, world!'), 4);
    assert.equal(countTextTokens('gpt-4o-mini', ''), 0);
    assert.equal(countTextTokens('gpt-4o-mini', words(50)), 50);
    assert.equal(countMessageTokens('gpt-4o-mini', user('Hello, world!')), 4 + 3);
    assert.equal(countPromptTokens('gpt-4o-mini', [user('Hello, world!'), assistant('Hi')]), 3 + 7 + 4);
  });

  test('special-token text in user input is counted, not rejected', () => {
    assert.ok(countTextTokens('gpt-4o-mini', 'say <|endoftext|> now') > 3);
  });

  test('a long text is counted in pieces, exactly as it would be whole', () => {
    // Words, punctuation, numbers, double spaces, tabs and line breaks, some 60,000 characters.
    const vocabulary = ['the', 'Quick', 'brown', 'fox', "don't", '12345', 'naïve', 'café', '😀', 'x=1;', '\n', '\n\n', '  ', '\t', 'http://example.com/a?b=c', '—', '...'];
    let text = '';
    for (let i = 0; text.length < 60_000; i++) text += vocabulary[(i * 7) % vocabulary.length] + (i % 5 ? ' ' : '');
    assert.ok([...textPieces(text)].length > 10);
    assert.equal([...textPieces(text)].join(''), text, 'nothing lost or repeated');
    assert.equal(countTextTokens('gpt-4o-mini', text), o200kCount(text, { disallowedSpecial: new Set() }));
    assert.equal(countTextTokens('gpt-4', text), cl100kCount(text, { disallowedSpecial: new Set() }));
    // Line breaks right after punctuation, which the tokenizer keeps together with it.
    const lines = Array.from({ length: 6_000 }, (_, i) => `Line ${i}.\n${i % 3 ? '' : '\n'}`).join('');
    assert.equal(countTextTokens('gpt-4o-mini', lines), o200kCount(lines, { disallowedSpecial: new Set() }));
    assert.equal(countTextTokens('gpt-4', lines), cl100kCount(lines, { disallowedSpecial: new Set() }));
    const cut = truncateTokens('gpt-4o-mini', text, 5_000);
    assert.ok(cut.tokens <= 5_000 && cut.tokens >= 4_995, String(cut.tokens));
    assert.equal(cut.tokens, countTextTokens('gpt-4o-mini', cut.text));
    assert.equal(cut.total, countTextTokens('gpt-4o-mini', text));
    assert.ok(text.startsWith(cut.text) && cut.text.length < text.length);
  });

  test("a cut text is the text's own start, character for character: never the tokenizer's decoding, which writes U+FFFD for some runs", () => {
    // 𝒳 is three tokens: a cut after 1,001 ends inside one, whose bytes the tokenizer's decoder then held over into the next text it decoded.
    for (const [model, text, room] of [
      ['gpt-4o-mini', '𝒳'.repeat(3_000), 1_001],
      ['gpt-4o-mini', 'Au café ☕ on parle. '.repeat(900), 1_000],
      ['gpt-4', 'x𝒳 café ☕ 𝒳 '.repeat(2_000), 1_001],
      ['gpt-4o-mini', '😀'.repeat(9_000), 1_000],
    ] as const) {
      const cut = truncateTokens(model, text, room);
      assert.ok(text.startsWith(cut.text), `${model}: a prefix`);
      assert.ok(cut.text.isWellFormed() && !cut.text.includes('\uFFFD'), `${model}: ${JSON.stringify(cut.text.slice(0, 40))}`);
      assert.ok(cut.tokens <= room && cut.tokens > room - 10, `${model}: ${cut.tokens} tokens`);
    }
  });

  test('a long stretch with no word boundary (one letter repeated, emoji) is cut into bounded pieces: counted, never split mid-character', () => {
    // Whole, 80,000 of one letter took the tokenizer seconds (its cost grows with the square); two million would take hours.
    const run = 'x'.repeat(2_000_000);
    const n = countTextTokens('gpt-4o-mini', run);
    assert.ok(n > 2_000_000 / 16 && n < 2_000_000, String(n));
    const cutRun = truncateTokens('gpt-4o-mini', run, 100);
    assert.ok(cutRun.tokens <= 100 && cutRun.tokens >= 99 && run.startsWith(cutRun.text), String(cutRun.tokens));
    const emoji = '😀'.repeat(50_000);
    const pieces = [...textPieces(emoji)];
    assert.ok(pieces.every((p) => p.length <= PIECE_CHARS && p.isWellFormed()));
    assert.equal(pieces.join(''), emoji);
    assert.ok(countTextTokens('gpt-4o-mini', emoji) >= 50_000);
  });

  test('tool calls count towards a message', () => {
    const m: ChatMessage = { role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'get_weather', arguments: '{"city":"Paris"}' }] };
    assert.ok(countMessageTokens('gpt-4o-mini', m) > 3 + 5);
  });
});

describe('buildContext', () => {
  const tokens = createTokenCounter({ threads: 1, timeoutMs: 60_000 });
  after(() => tokens.close());
  const history = [user(words(100)), assistant(words(100)), user(words(100)), assistant(words(100)), user('latest question')];

  test('everything fits: system prompt first, then the whole history in order', async () => {
    const out = await buildContext({ tokens, model: model(128_000), system: 'Be brief.', history, replyBudget: 1000 });
    assert.deepEqual(out, [{ role: 'system', content: 'Be brief.' }, ...history]);
  });

  test('drops whole turns, oldest first, to fit window minus reply budget', async () => {
    // Each old turn is 2 × (100 + 3) = 206 tokens; the latest is 2 + 3; system 3 + 3; priming 3.
    const latest = countMessageTokens('gpt-4o-mini', history[4]!);
    const system = 3 + countTextTokens('gpt-4o-mini', 'Be brief.');
    const fixed = 3 + system + latest;
    const fitsOneTurn = await buildContext({ tokens, model: model(fixed + 206 + 100), system: 'Be brief.', history, replyBudget: 100 });
    assert.deepEqual(fitsOneTurn, [{ role: 'system', content: 'Be brief.' }, history[2], history[3], history[4]]);
    assert.ok(countPromptTokens('gpt-4o-mini', fitsOneTurn) <= fixed + 206, 'within the budget');

    const exactlyTwo = await buildContext({ tokens, model: model(fixed + 412 + 100), system: 'Be brief.', history, replyBudget: 100 });
    assert.deepEqual(exactlyTwo.slice(1), history, 'a budget exactly met keeps both turns');
    const oneShort = await buildContext({ tokens, model: model(fixed + 411 + 100), system: 'Be brief.', history, replyBudget: 100 });
    assert.deepEqual(oneShort.slice(1), history.slice(2));
  });

  test('never drops the latest user message, even when it alone is over budget', async () => {
    const huge = [user('old'), assistant('reply'), user(words(500))];
    const out = await buildContext({ tokens, model: model(200), system: 'sys', history: huge, replyBudget: 100 });
    assert.deepEqual(out, [{ role: 'system', content: 'sys' }, huge[2]]);
  });

  test('the latest turn keeps its tool round; an older turn goes with its tool results', async () => {
    const h: ChatMessage[] = [
      user(words(300)),
      { role: 'assistant', content: '', toolCalls: [{ id: 'c1', name: 'lookup', arguments: '{}' }] },
      { role: 'tool', toolCallId: 'c1', content: words(300) },
      assistant('done'),
      user('and now?'),
      { role: 'assistant', content: '', toolCalls: [{ id: 'c2', name: 'lookup', arguments: '{}' }] },
      { role: 'tool', toolCallId: 'c2', content: 'result' },
    ];
    const out = await buildContext({ tokens, model: model(500), history: h, replyBudget: 100 });
    assert.deepEqual(out, h.slice(4), 'no orphan tool result, no orphan call');
  });

  test('an older turn too big to fit stops the walk: no gaps in the conversation', async () => {
    const h = [user('tiny one'), assistant('ok'), user(words(1000)), assistant('ok'), user('last')];
    const out = await buildContext({ tokens, model: model(600), history: h, replyBudget: 100 });
    assert.deepEqual(out, [user('last')]);
  });

  test('a message of megabytes is counted off the event loop, as countMessageTokens counts it', async () => {
    const long = [user('old'), assistant('ok'), user(`${'All work and no play. '.repeat(100_000)}`), assistant('ok'), user('last')];
    const loop = loopTurns();
    // gpt-4 counts with cl100k_base: stored counts (o200k_base) would not do, every message is counted.
    const window = 3 + countMessageTokens('gpt-4', long[2]!) + countMessageTokens('gpt-4', long[3]!) + countMessageTokens('gpt-4', long[4]!) + 100;
    const out = await buildContext({ tokens, model: { model: 'gpt-4', contextWindow: window }, history: long, replyBudget: 100 });
    assert.ok(loop.stop() > 0, 'no turn of the event loop while the history was counted');
    assert.deepEqual(out, long.slice(2), 'the budget met exactly by the count keeps those turns');
  });

  test('an unknown window falls back to a conservative default; no system prompt adds none', async () => {
    const long = [user(words(DEFAULT_CONTEXT_WINDOW)), assistant('ok'), user('last')];
    assert.deepEqual(await buildContext({ tokens, model: model(null), history: long, replyBudget: 100 }), [user('last')]);
    assert.deepEqual(await buildContext({ tokens, model: model(null), history: long, replyBudget: 100, fallbackContextWindow: 100_000 }), long);
  });
});
