import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../../src/config.ts';
import { costMicros, usdToMicros } from '../../../src/modules/ai/cost.ts';
import { aiFrom } from './support.ts';

const configFile = (value: unknown) => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'parley-ai-')), 'ai.json');
  writeFileSync(file, JSON.stringify(value));
  return file;
};

describe('cost arithmetic', () => {
  test('USD strings and numbers become exact integer micro-dollars', () => {
    assert.equal(usdToMicros('0.15'), 150_000);
    assert.equal(usdToMicros(0.15), 150_000);
    assert.equal(usdToMicros('0.075'), 75_000);
    assert.equal(usdToMicros(0.000001), 1);
    assert.equal(usdToMicros('15'), 15_000_000);
    assert.equal(usdToMicros(2.5), 2_500_000);
    for (const bad of ['-1', '0.0000001', 'abc', '1e3', -0.5, 1e-7, Number.NaN]) assert.throws(() => usdToMicros(bad), RangeError, String(bad));
  });

  test('tokens × price / 1e6, rounded half up once per request, no float drift', () => {
    const price = { input: usdToMicros('0.15'), output: usdToMicros('0.6'), cachedInput: usdToMicros('0.075') };
    assert.equal(costMicros(price, { inputTokens: 1_000_000, outputTokens: 0 }), 150_000);
    assert.equal(costMicros(price, { inputTokens: 1000, outputTokens: 200, cachedTokens: 400 }), 90 + 30 + 120);
    // 10 × 0.15 = 1.5 micro-dollars → 2 (half up); 3 × 0.15 = 0.45 → 0
    assert.equal(costMicros(price, { inputTokens: 10, outputTokens: 0 }), 2);
    assert.equal(costMicros(price, { inputTokens: 3, outputTokens: 0 }), 0);
    // 0.1 + 0.2 style drift: 7 tokens at $0.1 and 7 at $0.2 per MTok = 0.7 + 1.4 = 2.1 → 2 (floats give 2.1000000000000005)
    assert.equal(costMicros({ input: 100_000, output: 200_000 }, { inputTokens: 7, outputTokens: 7 }), 2);
    // Sums of parts are rounded once: 5 × 0.1 + 5 × 0.1 = 1 exactly, not round(0.5) + round(0.5) = 2
    assert.equal(costMicros({ input: 100_000, output: 100_000 }, { inputTokens: 5, outputTokens: 5 }), 1);
    // Large: 10M tokens at $1000/MTok would overflow Number's exact range in the product.
    assert.equal(costMicros({ input: 1_000_000_000, output: 0 }, { inputTokens: 10_000_000, outputTokens: 0 }), 10_000_000_000);
    // No cached price: cached tokens at the input price; cached larger than input is clamped.
    assert.equal(costMicros({ input: 1_000_000, output: 0 }, { inputTokens: 10, outputTokens: 0, cachedTokens: 4 }), 10);
    assert.equal(costMicros({ input: 1_000_000, output: 0, cachedInput: 0 }, { inputTokens: 10, outputTokens: 0, cachedTokens: 40 }), 0);
  });
});

describe('model catalog', () => {
  test('lists only configured providers, with known prices in USD per MTok', () => {
    const ai = aiFrom({ OPENAI_API_KEY: 'k' });
    const ids = ai.models().map((m) => m.id);
    assert.ok(ids.includes('openai:gpt-4o-mini'));
    assert.ok(!ids.some((id) => id.startsWith('anthropic:')));
    assert.deepEqual(ai.model('openai:gpt-4o-mini'), {
      id: 'openai:gpt-4o-mini',
      provider: 'openai',
      model: 'gpt-4o-mini',
      contextWindow: 128_000,
      maxOutputTokens: 16_384,
      vision: true,
      pricing: { input: 0.15, output: 0.6, cachedInput: 0.075 },
    });
    assert.equal(ai.model('anthropic:claude-sonnet-4-5'), undefined, 'provider not configured');
  });

  test('a model of a configured provider that is not in the table is usable with unknown (null) prices, never zero', () => {
    const ai = aiFrom({ OPENAI_API_KEY: 'k', OLLAMA_BASE_URL: 'http://127.0.0.1:11434' });
    assert.deepEqual(ai.model('openai:gpt-9-preview'), { id: 'openai:gpt-9-preview', provider: 'openai', model: 'gpt-9-preview', contextWindow: null, maxOutputTokens: null, vision: false, pricing: null });
    assert.equal(ai.model('ollama:llama3.2:3b')?.model, 'llama3.2:3b', 'the model keeps its own colon');
    assert.equal(ai.model('ollama:llama3.2:3b')?.pricing, null);
  });

  test('config file entries add models and override built-in prices; env wins over the file for provider settings', () => {
    const file = configFile({
      defaultModel: 'local:qwen3',
      providers: [
        { id: 'local', baseUrl: 'http://vllm.internal:8000/v1', models: ['qwen3'] },
        { id: 'openai', apiKey: 'from-file', baseUrl: 'http://file.example/v1' },
      ],
      models: [
        { id: 'local:qwen3', contextWindow: 32768, maxOutputTokens: 4096, vision: true, pricing: { input: '0.01', output: 0.02 } },
        { id: 'openai:gpt-4o', pricing: { input: '2', output: '8' } },
        { id: 'openai:gpt-4o-mini', pricing: null },
      ],
    });
    const config = loadConfig({ PARLEY_AI_CONFIG: file, OPENAI_API_KEY: 'from-env' });
    const openai = config.ai.providers.find((p) => p.id === 'openai')!;
    assert.equal(openai.apiKey, 'from-env');
    assert.equal(openai.baseUrl, 'http://file.example/v1');
    assert.equal(config.ai.defaultModel, 'local:qwen3');
    const ai = aiFrom({ PARLEY_AI_CONFIG: file, OPENAI_API_KEY: 'from-env' });
    assert.deepEqual(ai.model('local:qwen3')?.pricing, { input: 0.01, output: 0.02 });
    assert.equal(ai.model('local:qwen3')?.contextWindow, 32768);
    assert.deepEqual(ai.model('openai:gpt-4o')?.pricing, { input: 2, output: 8 });
    assert.equal(ai.model('openai:gpt-4o')?.contextWindow, 128_000, 'fields the file does not name are kept');
    assert.equal(ai.model('openai:gpt-4o-mini')?.pricing, null, 'a file can declare a price unknown');
    assert.equal(ai.model('local:qwen3')?.vision, true, 'a file can say a model sees images');
    assert.equal(ai.model('openai:gpt-4o')?.vision, true, 'the built-in flag is kept when the file does not name it');
  });

  test('bare model names resolve through the catalog; Parley ids resolve as they are', () => {
    const ai = aiFrom({
      OPENAI_API_KEY: 'k',
      OPENAI_COMPATIBLE_ENDPOINTS: JSON.stringify([{ name: 'vllm', baseUrl: 'http://127.0.0.1:8000/v1', models: ['qwen3-32b'] }]),
    });
    assert.equal(ai.resolve('gpt-4o-mini'), 'openai:gpt-4o-mini');
    assert.equal(ai.resolve('qwen3-32b'), 'vllm:qwen3-32b');
    assert.equal(ai.resolve('vllm:anything'), 'vllm:anything');
    assert.equal(ai.resolve('claude-sonnet-4-5'), undefined);
    assert.equal(ai.resolve('nope:x'), undefined);
  });

  test('bad AI configuration stops start-up with a message naming it', () => {
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ OPENAI_COMPATIBLE_ENDPOINTS: 'not json' }, /OPENAI_COMPATIBLE_ENDPOINTS/],
      [{ OPENAI_COMPATIBLE_ENDPOINTS: '[{"name":"a:b","baseUrl":"http://x"}]' }, /OPENAI_COMPATIBLE_ENDPOINTS 0\.name/],
      [{ DEFAULT_MODEL: 'gpt-4o' }, /DEFAULT_MODEL/],
      [{ PARLEY_AI_CONFIG: '/nonexistent/ai.json' }, /PARLEY_AI_CONFIG: cannot read/],
      [{ PARLEY_AI_CONFIG: configFile({ models: [{ id: 'x:y', pricing: { input: '0.0000001', output: 1 } }] }) }, /PARLEY_AI_CONFIG models\.0\.pricing\.input/],
      [{ PARLEY_AI_CONFIG: configFile({ providers: [{ id: 'custom' }] }) }, /"custom".*needs a baseUrl/],
      [{ AI_RETRIES: '-1' }, /AI_RETRIES/],
    ];
    for (const [env, message] of bad) assert.throws(() => loadConfig(env), (err: Error) => err instanceof ConfigError && message.test(err.message), JSON.stringify(env));
  });

  test('Ollama is reached through its OpenAI-compatible /v1; OpenRouter has a default base URL', () => {
    const c = loadConfig({ OLLAMA_BASE_URL: 'http://127.0.0.1:11434/', OPENROUTER_API_KEY: 'or' }).ai.providers;
    assert.equal(c.find((p) => p.id === 'ollama')?.baseUrl, 'http://127.0.0.1:11434/v1');
    assert.equal(c.find((p) => p.id === 'openrouter')?.baseUrl, 'https://openrouter.ai/api/v1');
    assert.equal(loadConfig({ OLLAMA_BASE_URL: 'http://h:1/v1' }).ai.providers[0]?.baseUrl, 'http://h:1/v1');
  });
});
