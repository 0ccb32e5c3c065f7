import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createPatternMatcher } from '../../../src/modules/safety/pattern-matcher.ts';
import { createLogger } from '../../../src/platform/observability/logger.ts';

// `\d+#\d+` is a safe shape (rules.ts), yet tried from each of 60,000 digits it takes seconds: the search is stopped.
const SLOW = '1'.repeat(60_000);

test('patterns run off the event loop: a search past its time is stopped (timeout) and the searches queued behind it get their own answers', async () => {
  const matcher = createPatternMatcher({ timeoutMs: 300, logger: createLogger('silent') });
  try {
    const patterns = ['\\bcard\\b', '\\d+#\\d+', 'secret-\\d+'];
    const [before, slow, after, none] = await Promise.all([
      matcher.firstMatch('my SECRET-42', patterns),
      matcher.firstMatch(SLOW, patterns),
      matcher.firstMatch('order 12#34', patterns),
      matcher.firstMatch('nothing here', patterns),
    ]);
    assert.deepEqual([before, slow, after, none], [2, 'timeout', 1, -1]);
    // The thread that was stopped is replaced: later searches answer as before.
    assert.equal(await matcher.firstMatch('a card', patterns), 0);
    assert.equal(await matcher.firstMatch('x', []), -1, 'no patterns: no search');
  } finally {
    await matcher.close();
  }
  await assert.rejects(matcher.firstMatch('after close', ['x']), /closed/);
});
