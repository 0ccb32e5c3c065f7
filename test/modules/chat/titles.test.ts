import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanTitle } from '../../../src/modules/chat/titles.ts';

test('titles from the model are cleaned: one line, no quotes, label or final period, bounded', () => {
  assert.equal(cleanTitle('"Trip to Lisbon."'), 'Trip to Lisbon');
  assert.equal(cleanTitle('Title: Budget planning\nHere is why…'), 'Budget planning');
  assert.equal(cleanTitle('  **Rust lifetimes**  '), 'Rust lifetimes');
  assert.equal(cleanTitle('“Quokka facts”'), 'Quokka facts');
  assert.equal(cleanTitle('   '), undefined);
  assert.equal(cleanTitle('Null\u0000and\ttabs\u0007 here'), 'Null and tabs here', 'no control characters; U+0000 cannot be stored');
  assert.equal(cleanTitle('""'), undefined);
  const long = cleanTitle('word '.repeat(40))!;
  assert.ok(long.length <= 80 && long.endsWith('…'), long);
});

test('a title cut to length never ends inside a surrogate pair', () => {
  const title = cleanTitle('😀'.repeat(100))!;
  assert.ok(title.isWellFormed(), JSON.stringify(title.slice(-3)));
  assert.ok(title.endsWith('😀…') && title.length <= 80, title);
});
