import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { mergePreferences, preferencesPatchSchema, preferencesSchema, readPreferences } from '../../../src/modules/users/preferences.ts';

test('readPreferences: missing document gives every default', () => {
  const p = readPreferences(null);
  assert.equal(p.theme, 'system');
  assert.equal(p.timezone, 'UTC');
  assert.deepEqual(p.notifications, { email: true, push: true, sms: true, slack: true, inApp: true, digest: 'off', digestTime: '09:00', digestDay: 'monday', quietHours: null });
});

test('readPreferences: an invalid stored field falls back alone, the rest is kept', () => {
  const p = readPreferences({ theme: 'dark', timezone: 'Mars/Olympus', locale: 'fr-FR', stale: 1 });
  assert.equal(p.theme, 'dark');
  assert.equal(p.locale, 'fr-FR');
  assert.equal(p.timezone, 'UTC');
  assert.equal('stale' in p, false);
});

test('mergePreferences merges nested objects field by field', () => {
  const p = mergePreferences(readPreferences({ notifications: { email: false, push: true, inApp: true, digest: 'daily' } }), {
    notifications: { push: false },
  });
  assert.deepEqual(p.notifications, { email: false, push: false, sms: true, slack: true, inApp: true, digest: 'daily', digestTime: '09:00', digestDay: 'monday', quietHours: null });
});

test('readPreferences keeps a stored defaultModel as it is, so an unusable one surfaces (unknown_model) instead of being ignored', () => {
  assert.equal(readPreferences({ defaultModel: 'gpt-4o' }).defaultModel, 'gpt-4o');
  assert.equal(readPreferences({ defaultModel: 42 }).defaultModel, null);
});

test('every preference says in the API docs what it does, or that a later release uses it', () => {
  for (const [name, schema] of [['read', preferencesSchema], ['patch', preferencesPatchSchema]] as const) {
    const doc = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as any;
    const root = doc.$defs?.Preferences ?? doc;
    const leaves = Object.entries(root.properties).flatMap(([key, field]: [string, any]) =>
      field.type === 'object' ? Object.entries(field.properties).map(([sub, f]) => [`${key}.${sub}`, f] as const) : [[key, field] as const],
    );
    assert.equal(leaves.length, 16, name);
    for (const [path, field] of leaves) assert.ok((field as any).description?.length > 20, `${name}: ${path} is documented`);
  }
});
