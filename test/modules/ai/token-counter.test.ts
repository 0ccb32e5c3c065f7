import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { AppError } from '../../../src/errors.ts';
import { createTokenCounter, INLINE_CHARS } from '../../../src/modules/ai/token-counter.ts';
import { countTextTokens, PIECE_CHARS, truncateTokens } from '../../../src/modules/ai/tokens.ts';
import { loopTurns } from '../../support/loop-turns.ts';

/** Prose of `n` characters: words, punctuation, accents, emoji (surrogate pairs) and line breaks. */
function prose(n: number): string {
  const vocabulary = ['the', 'Quick', 'brown', 'fox', "don't", '12345', 'naïve', 'café', '😀', 'x=1;', '\n', '\n\n', '  ', '\t', '𝒳𝒳', '—', '...'];
  let text = '';
  for (let i = 0; text.length < n; i++) text += vocabulary[(i * 7) % vocabulary.length] + (i % 5 ? ' ' : '');
  return text.slice(0, n);
}

describe('token counts off the event loop', () => {
  const counter = createTokenCounter({ threads: 1, timeoutMs: 120_000 });
  after(() => counter.close());

  // Either side of the inline limit, and of the tokenizer's pieces; runs with no place to cut, and emoji whose pairs a cut must not split.
  const samples: Array<[string, string]> = [
    ['short prose', prose(200)],
    ['prose at the inline limit', prose(INLINE_CHARS)],
    ['prose just over it', prose(INLINE_CHARS + 1)],
    ['long prose', prose(50_000)],
    ['a long run of one letter', 'x'.repeat(3 * PIECE_CHARS + 17)],
    ['a long run of emoji', '😀'.repeat(PIECE_CHARS + 3)],
    ['an odd run of astral letters', `a${'𝒳'.repeat(2 * PIECE_CHARS)}`],
    ['base64', Buffer.from(prose(30_000)).toString('base64')],
  ];

  test('a count on a thread is the count tokens.ts makes inline, for both encodings', async () => {
    for (const model of ['gpt-4o-mini', 'gpt-4']) {
      for (const [name, text] of samples) assert.equal(await counter.count(model, [text]), countTextTokens(model, text), `${model}: ${name}`);
      // Many texts adding up past the limit are one task: their counts, added.
      const texts = samples.map(([, text]) => text);
      assert.equal(await counter.count(model, texts), texts.reduce((n, text) => n + countTextTokens(model, text), 0), `${model}: all together`);
      assert.equal(await counter.count(model, []), 0);
    }
  });

  test('a cut on a thread is the cut tokens.ts makes inline', async () => {
    for (const model of ['gpt-4o-mini', 'gpt-4']) {
      for (const [name, text] of samples) {
        for (const room of [0, 100, 1_001, 1_000_000]) assert.deepEqual(await counter.truncate(model, text, room), truncateTokens(model, text, room), `${model}: ${name}, ${room} tokens`);
      }
    }
  });

  test('a running count of a growing text is the count of the text so far, each part counted about once', async () => {
    for (const model of ['gpt-4o-mini', 'gpt-4']) {
      for (const [name, whole] of samples) {
        const running = counter.running(model);
        let counted = 0;
        const { count } = counter;
        counter.count = (m, texts, signal) => {
          for (const text of texts) counted += text.length;
          return count.call(counter, m, texts, signal);
        };
        try {
          // Grown in steps of uneven size, as an answer streams; each step's count is the whole's so far.
          let steps = 0;
          for (let end = 0; end < whole.length; steps++) {
            end = Math.min(whole.length, end + 997 + ((end * 7) % 1_500));
            assert.equal(await running(whole.slice(0, end)), countTextTokens(model, whole.slice(0, end)), `${model}: ${name}, ${end} characters`);
          }
          assert.ok(counted <= whole.length + steps * (PIECE_CHARS + 1), `${model}: ${name}: ${counted} characters counted for ${whole.length} in ${steps} steps`);
        } finally {
          counter.count = count;
        }
      }
    }
  });

  test('while a large count runs, the event loop goes on; a count past its time is a 503, and the next one is counted', async () => {
    const text = 'All work and no play. '.repeat(200_000);
    const loop = loopTurns();
    const n = await counter.count('gpt-4o-mini', [text]);
    assert.ok(loop.stop() > 0, 'no turn of the event loop while the text was counted');
    assert.equal(n, countTextTokens('gpt-4o-mini', text));

    const hasty = createTokenCounter({ threads: 1, timeoutMs: 1_000 });
    try {
      // Runs of base64 take the tokenizer far longer than a second (tens of seconds); a new thread counts the next text.
      const slow = randomBytes(3_000_000).toString('base64');
      await assert.rejects(hasty.count('gpt-4o-mini', [slow]), (err: unknown) => err instanceof AppError && err.status === 503 && err.code === 'token_count_timeout');
      assert.equal(await hasty.count('gpt-4o-mini', [prose(10_000)]), countTextTokens('gpt-4o-mini', prose(10_000)));
    } finally {
      await hasty.close();
    }
  });
});
