import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { countTokens } from 'gpt-tokenizer';
import type { ModelInfo } from '../../../src/modules/ai/index.ts';
import { countTextTokens } from '../../../src/modules/ai/tokens.ts';
import { chunkText, type Chunk } from '../../../src/modules/knowledge/chunker.ts';
import { createPassageSplitter, INLINE_CHUNK_CHARS } from '../../../src/modules/knowledge/ingest.ts';
import { loopTurns } from '../../support/loop-turns.ts';

const count = (s: string) => countTokens(s);
const opts = { maxTokens: 60, overlapTokens: 15, count };

/** Every passage is its slice of the source, within the limit, and together they cover every word. */
function checkInvariants(source: string, chunks: Chunk[], maxTokens: number) {
  for (const c of chunks) {
    assert.equal(source.slice(c.start, c.end), c.text);
    assert.ok(c.tokens <= maxTokens, `passage ${c.index} has ${c.tokens} tokens`);
    assert.equal(c.tokens, count(c.text));
  }
  for (let i = 1; i < chunks.length; i++) assert.ok(chunks[i]!.start > chunks[i - 1]!.start, 'passages move forward');
  for (const c of chunks) assert.ok(c.text.trim().length > 0, 'no empty passage');
  const covered = new Uint8Array(source.length);
  for (const c of chunks) covered.fill(1, c.start, c.end);
  for (let i = 0; i < source.length; i++) if (!/\s/.test(source[i]!)) assert.equal(covered[i], 1, `character ${i} (${source[i]}) is in no passage`);
}

const sentence = (i: number) => `Sentence number ${i} says something about topic ${i % 7}.`;

describe('chunkText', () => {
  test('a short text is one passage, hashed', () => {
    const [only, ...rest] = chunkText('Hello world.', opts);
    assert.deepEqual(rest, []);
    assert.equal(only!.text, 'Hello world.');
    assert.match(only!.hash, /^[0-9a-f]{64}$/);
    assert.deepEqual(chunkText('', opts), []);
    assert.deepEqual(chunkText('\n\n  \n', opts), []);
  });

  test('long prose is cut at sentence ends, each passage within the limit, consecutive ones overlapping by whole sentences', () => {
    const source = Array.from({ length: 40 }, (_, i) => sentence(i)).join(' ');
    const chunks = chunkText(source, opts);
    assert.ok(chunks.length > 3);
    checkInvariants(source, chunks, opts.maxTokens);
    for (const c of chunks) assert.match(c.text, /^Sentence number \d+ .*\.$/s, 'starts and ends on a sentence');
    for (let i = 1; i < chunks.length; i++) {
      const overlap = chunks[i - 1]!.end - chunks[i]!.start;
      assert.ok(overlap > 0, `passage ${i} repeats the end of the one before`);
      assert.ok(count(source.slice(chunks[i]!.start, chunks[i - 1]!.end)) <= opts.overlapTokens + 2);
    }
  });

  test('headings start passages and are carried as the trail each passage sits under', () => {
    const source = ['# Guide', '', 'Intro text.', '', '## Install', '', 'Run the installer.', '', '### On Linux', '', 'Use the package.', '', '## Use', '', 'Open it.'].join('\n');
    const chunks = chunkText(source, { ...opts, maxTokens: 200 });
    checkInvariants(source, chunks, 200);
    assert.deepEqual(
      chunks.map((c) => [c.headings, c.text.split('\n').at(-1)]),
      [
        [['Guide'], 'Intro text.'],
        [['Guide', 'Install'], 'Run the installer.'],
        [['Guide', 'Install', 'On Linux'], 'Use the package.'],
        [['Guide', 'Use'], 'Open it.'],
      ],
    );
    assert.ok(chunks.every((c) => /^#/.test(c.text)), 'each passage begins at its heading, not overlapping the section before');
  });

  test('a code block that fits is never cut; one that does not is cut at whitespace', () => {
    const code = ['```js', ...Array.from({ length: 8 }, (_, i) => `const v${i} = compute(${i});`), '```'].join('\n');
    const source = `Before. ${'Filler sentence here. '.repeat(10)}\n\n${code}\n\nAfter.`;
    const chunks = chunkText(source, { ...opts, maxTokens: 120 });
    checkInvariants(source, chunks, 120);
    assert.ok(chunks.some((c) => c.text.includes(code)), 'the block is whole in one passage');
    const huge = ['```', ...Array.from({ length: 200 }, (_, i) => `line ${i}`), '```'].join('\n');
    checkInvariants(huge, chunkText(huge, opts), opts.maxTokens);
  });

  test('text without any boundary (one enormous word, CJK without spaces) is still cut within the limit', () => {
    for (const source of ['x'.repeat(5000), '漢字'.repeat(800), 'a.b'.repeat(900), `${'word '.repeat(300)}   \n`]) {
      const chunks = chunkText(source, opts);
      assert.ok(chunks.length > 1);
      checkInvariants(source, chunks, opts.maxTokens);
    }
  });

  test('a long paragraph without a sentence end is cut at spaces into passages filled to the limit, one after the other', () => {
    const source = Array.from({ length: 3000 }, (_, i) => `word${i % 13}`).join(' ');
    const chunks = chunkText(source, opts);
    assert.ok(chunks.length > 20);
    checkInvariants(source, chunks, opts.maxTokens);
    for (let i = 1; i < chunks.length; i++) {
      assert.match(source.slice(chunks[i - 1]!.end, chunks[i]!.start), /^\s+$/, `passage ${i} follows the one before: no sentence to repeat, no word skipped`);
      const nextWord = source.indexOf(' ', chunks[i]!.start);
      assert.ok(count(source.slice(chunks[i - 1]!.start, nextWord === -1 ? source.length : nextWord)) > opts.maxTokens, `passage ${i - 1} is full: one more word would not fit`);
    }
  });

  test('many tiny sentences are packed to the limit, consecutive passages overlapping by whole sentences up to overlapTokens, each under its heading', () => {
    const sections = Array.from({ length: 4 }, (_, s) => `# Part ${s}\n\n${'a. '.repeat(700)}`);
    const source = sections.join('\n\n');
    const chunks = chunkText(source, opts);
    assert.ok(chunks.length > 40);
    checkInvariants(source, chunks, opts.maxTokens);
    for (const [i, c] of chunks.entries()) {
      const part = source.slice(0, c.end).match(/# (Part \d+)/g)!.at(-1)!.slice(2);
      assert.deepEqual(c.headings, [part], `passage ${i} sits under the last heading before it`);
      assert.match(c.text, /(^|\n)a\.( a\.)*\s*$/, `passage ${i} starts and ends on a sentence`);
      const next = chunks[i + 1];
      if (!next || next.text.startsWith('#')) continue;
      assert.ok(count(`${c.text} a.`) > opts.maxTokens, `passage ${i} is full: one more sentence would not fit`);
      const overlap = count(source.slice(next.start, c.end));
      assert.ok(overlap <= opts.overlapTokens && overlap > opts.overlapTokens - count(' a.'), `passage ${i + 1} repeats ${overlap} tokens of the one before`);
    }
  });

  test('the work is proportional to the text: each character is counted a few times, not once for every word after it', () => {
    for (const source of ['word '.repeat(20_000), 'a. '.repeat(20_000), `# Title\n\n${'word '.repeat(10_000)}\n\n${'a. '.repeat(10_000)}`]) {
      let calls = 0;
      let counted = 0;
      const chunks = chunkText(source, {
        ...opts,
        count: (s) => {
          calls++;
          counted += s.length;
          return count(s);
        },
      });
      assert.ok(counted <= 4 * source.length, `${counted} characters counted for a text of ${source.length}`);
      if (!source.includes('.')) assert.ok(calls <= 3 * chunks.length + 20, `${calls} counts for ${chunks.length} passages of words`);
    }
  });

  test('an edit changes the hashes of the passages it touches only', () => {
    const paragraphs = Array.from({ length: 12 }, (_, p) => Array.from({ length: 5 }, (_, i) => sentence(p * 5 + i)).join(' '));
    const before = chunkText(paragraphs.join('\n\n'), opts);
    paragraphs[10] = paragraphs[10]!.replace('Sentence number 50', 'A changed sentence 50');
    const after = chunkText(paragraphs.join('\n\n'), opts);
    const old = new Set(before.map((c) => c.hash));
    const changed = after.filter((c) => !old.has(c.hash));
    assert.ok(changed.length >= 1 && changed.length <= 2, `${changed.length} of ${after.length} passages changed`);
    assert.ok(changed.every((c) => c.text.includes('A changed sentence 50')));
  });

  test('bad options are refused', () => {
    assert.throws(() => chunkText('x', { ...opts, overlapTokens: 60 }));
    assert.throws(() => chunkText('x', { ...opts, maxTokens: 0 }));
  });
});

describe('passages of a long text, split on a thread', () => {
  // As the AI module resolves a catalog id to its provider's model name, and counts with it.
  const ai = {
    model: (id: string) => ({ model: id.slice(id.indexOf(':') + 1) }) as ModelInfo,
    countTokens: (id: string, text: string) => countTextTokens(id.slice(id.indexOf(':') + 1), text),
  };
  const splitter = createPassageSplitter({ ai, timeoutMs: 120_000 });
  after(() => splitter.close());

  const prose = (n: number) => {
    let text = '# Guide\n\n';
    for (let i = 0; text.length < n; i++) text += `${sentence(i)}${i % 9 === 8 ? '\n\n## Part\n\n' : ' '}`;
    return text.slice(0, n);
  };

  test('the passages are the ones chunkText makes inline, either side of the inline limit, with either encoding', async () => {
    const samples = [prose(500), prose(INLINE_CHUNK_CHARS), prose(INLINE_CHUNK_CHARS + 1), prose(60_000), 'x'.repeat(INLINE_CHUNK_CHARS * 3), `${'😀'.repeat(3_000)} tail.`];
    for (const id of ['openai:text-embedding-3-small', 'openai:gpt-4']) {
      for (const [i, text] of samples.entries()) {
        const limits = { maxTokens: 200, overlapTokens: 40 };
        const inline = chunkText(text, { ...limits, count: (s) => ai.countTokens(id, s) });
        assert.deepEqual(await splitter.split(text, { ...limits, model: id }), inline, `${id}: sample ${i}`);
      }
    }
  });

  test('while a large text is split, the event loop goes on', async () => {
    const text = prose(1_000_000);
    const loop = loopTurns();
    const passages = await splitter.split(text, { maxTokens: 512, overlapTokens: 64, model: 'openai:text-embedding-3-small' });
    const turns = loop.stop();
    assert.ok(turns > 1, `${turns} turns of the event loop while the text was split`);
    assert.equal(passages.at(-1)!.end, text.length);
  });
});
