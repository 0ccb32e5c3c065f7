import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createSseParser } from '../../../src/modules/ai/sse-parser.ts';

/** Feeds the pieces in order and returns the data of every event dispatched. */
function parse(...pieces: string[]): string[] {
  const events: string[] = [];
  const parser = createSseParser((data) => events.push(data));
  for (const piece of pieces) parser.push(piece);
  parser.end();
  return events;
}

describe('ai: SSE parser', () => {
  test('one event per blank line; the single space after the colon is dropped, others kept', () => {
    assert.deepEqual(parse('data: {"a":1}\n\ndata:{"b":2}\n\ndata:  two spaces\n\n'), ['{"a":1}', '{"b":2}', ' two spaces']);
  });

  test('lines and events split anywhere across pieces', () => {
    const text = 'data: {"choices":[{"delta":{"content":"héllo"}}]}\n\ndata: [DONE]\n\n';
    for (let cut = 1; cut < text.length; cut++) {
      assert.deepEqual(parse(text.slice(0, cut), text.slice(cut)), ['{"choices":[{"delta":{"content":"héllo"}}]}', '[DONE]'], `cut at ${cut}`);
    }
    assert.deepEqual(parse(...text.split('')), ['{"choices":[{"delta":{"content":"héllo"}}]}', '[DONE]'], 'one character at a time');
  });

  test('CRLF and lone CR end lines too, including a CRLF split between pieces', () => {
    assert.deepEqual(parse('data: a\r\n\r\ndata: b\r\rdata: c\n\n'), ['a', 'b', 'c']);
    assert.deepEqual(parse('data: a\r', '\n\r', '\ndata: b\r\n', '\r\n'), ['a', 'b']);
    // A CR ending one piece and a LF opening the next are one line end, not two (which would dispatch early).
    assert.deepEqual(parse('data: a\r', '\ndata: b\r\n\r\n'), ['a\nb']);
  });

  test('comments and fields other than data are ignored', () => {
    assert.deepEqual(parse(': keep-alive\n\n', 'event: message\nid: 7\nretry: 1000\ndata: x\n: between\n\n'), ['x']);
    assert.deepEqual(parse(': only a comment\n\n'), [], 'an event without data dispatches nothing');
  });

  test('several data lines make one event joined with newlines; a bare "data" is an empty line', () => {
    assert.deepEqual(parse('data: first\ndata: second\ndata\ndata: third\n\n'), ['first\nsecond\n\nthird']);
  });

  test('an event not closed by a blank line when the stream ends is dropped', () => {
    assert.deepEqual(parse('data: complete\n\ndata: cut sho'), ['complete']);
    assert.deepEqual(parse('data: complete\n\ndata: no blank line\n'), ['complete']);
  });
});
