import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createToolbox } from '../../../src/modules/tools/toolbox.ts';
import type { Tool } from '../../../src/modules/tools/tool.ts';
import { createLogger } from '../../../src/platform/observability/logger.ts';

const scope = { userId: 'u', projectId: null, conversationId: null, apiKeyId: null };

test("a result or arguments cut to length are cut between characters: the model never gets half a surrogate pair", async () => {
  const smileys: Tool = { name: 'smileys', description: 'Smileys', parameters: { type: 'object' }, run: async () => '😀'.repeat(10) };
  const toolbox = createToolbox({ sources: () => [{ list: async () => [smileys] }], settings: { timeoutMs: 1_000, maxResultChars: 5 }, logger: createLogger('silent') });
  const outcome = await toolbox.run(smileys, {}, { ...scope, signal: AbortSignal.timeout(5_000), limits: {} });
  assert.ok(outcome.ok, JSON.stringify(outcome));
  assert.ok(outcome.content.isWellFormed(), JSON.stringify(outcome.content));
  assert.match(outcome.content, /^😀😀\n\[result cut: 20 characters, the first 5 shown\]$/);
  const parsed = toolbox.parse(smileys, 'smileys', `{${'😀'.repeat(150)}`);
  assert.ok('outcome' in parsed && !parsed.outcome.ok);
  assert.ok('outcome' in parsed && parsed.outcome.error!.message.isWellFormed());
});
