import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createListingCache } from '../../../src/modules/mcp/cache.ts';

/** A listing of `count` tools whose descriptions make it about `count` KB as JSON. */
const listing = (count: number) => Array.from({ length: count }, (_, i) => ({ name: `t${i}`, description: 'x'.repeat(1_000), inputSchema: { type: 'object' } }));

describe('MCP listing cache', () => {
  test('a listing larger than the whole bound is not kept, and pushes out none of the others', async () => {
    const cache = createListingCache(64 * 1024);
    const small = Promise.resolve(listing(10));
    cache.set('small', 1, small, 60_000);
    await small;
    const huge = Promise.resolve(listing(100));
    cache.set('huge', 1, huge, 60_000);
    // While under way it is shared by every caller.
    assert.equal(cache.get('huge', 1), huge);
    await huge;
    await Promise.resolve();
    assert.equal(cache.get('huge', 1), undefined, 'the oversized listing is gone once its size is known');
    assert.equal(cache.get('small', 1), small, 'the small listing stays');
  });

  test('a hit makes a listing the most recently used: the other one goes first', async () => {
    const cache = createListingCache(64 * 1024);
    const [a, b, c] = [Promise.resolve(listing(25)), Promise.resolve(listing(25)), Promise.resolve(listing(25))];
    cache.set('a', 1, a, 60_000);
    cache.set('b', 1, b, 60_000);
    await Promise.all([a, b]);
    assert.equal(cache.get('a', 1), a);
    cache.set('c', 1, c, 60_000);
    await c;
    await Promise.resolve();
    assert.equal(cache.get('b', 1), undefined, 'the least recently used went');
    assert.equal(cache.get('a', 1), a);
    assert.equal(cache.get('c', 1), c);
    assert.equal(cache.get('a', 2), undefined, 'another version of the server is no hit');
  });
});
