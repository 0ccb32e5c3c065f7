import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createBanCache } from '../../../src/modules/limits/ban-cache.ts';

describe('ban cache', () => {
  let clock = 1_000_000;
  const make = () => createBanCache({ now: () => clock });
  const ban = (id: string, subject = 's', ms = 60_000) => ({ id, kind: 'user' as const, subject, expiresAt: new Date(clock + ms) });

  test('finds the ban in force that ends last; expired bans do not count', () => {
    const cache = make();
    cache.add(ban('a', 's', 1_000));
    cache.add(ban('b', 's', 5_000));
    assert.equal(cache.find('user', 's')?.id, 'b');
    assert.equal(cache.find('ip', 's'), undefined, 'kinds are apart');
    clock += 6_000;
    assert.equal(cache.find('user', 's'), undefined);
  });

  test('lifting one of two bans leaves the other in force', () => {
    const cache = make();
    cache.add(ban('a'));
    cache.add(ban('b', 's', 120_000));
    cache.lift({ id: 'b', kind: 'user', subject: 's' });
    assert.equal(cache.find('user', 's')?.id, 'a');
    cache.lift({ id: 'a', kind: 'user', subject: 's' });
    assert.equal(cache.find('user', 's'), undefined);
    assert.equal(cache.size, 0);
  });

  test('a reload keeps bans that arrived while it ran and drops those no longer in the database', () => {
    const cache = make();
    cache.add(ban('old', 'gone'));
    clock += 1;
    const started = cache.startReload();
    clock += 1;
    cache.add(ban('new', 'fresh')); // notice during the read
    cache.replace([ban('db', 'x')], started);
    assert.equal(cache.find('user', 'gone'), undefined, 'lifted elsewhere, and the notice was lost');
    assert.equal(cache.find('user', 'fresh')?.id, 'new');
    assert.equal(cache.find('user', 'x')?.id, 'db');
  });

  test('a reload that read a ban before it was lifted does not bring it back', () => {
    const cache = make();
    cache.add(ban('a'));
    const started = cache.startReload();
    clock += 1;
    cache.lift({ id: 'a', kind: 'user', subject: 's' }); // notice during the read
    cache.replace([ban('a')], started);
    assert.equal(cache.find('user', 's'), undefined);
    clock += 1;
    cache.replace([ban('a')], started - 1);
    assert.equal(cache.find('user', 's'), undefined, 'nor does a second reload that began before the lift');
  });
});
