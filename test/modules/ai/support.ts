import { after, before, beforeEach } from 'node:test';
import { loadConfig } from '../../../src/config.ts';
import { createAi } from '../../../src/modules/ai/service.ts';
import type { ChatEvent, ChatRequest } from '../../../src/modules/ai/types.ts';
import { startFakeAnthropic, type FakeAnthropic } from '../../support/fake-anthropic.ts';
import { startFakeOpenAI, type FakeOpenAI } from '../../support/fake-openai.ts';

/** An AI service over the given env (fakes' env, knobs), with fast retries unless told otherwise. */
export function aiFrom(env: Record<string, string>) {
  const config = loadConfig({ PARLEY_DATA_DIR: 'memory://', AI_RETRY_BASE_MS: '10', AI_RETRY_MAX_MS: '2000', ...env });
  return createAi(config.ai, { random: () => 0.5 });
}

/** Drains a chat stream: the events in order, the text, and the error it ended with (if any). */
export async function collect(stream: AsyncIterable<ChatEvent>) {
  const events: ChatEvent[] = [];
  let error: any;
  try {
    for await (const e of stream) events.push(e);
  } catch (err) {
    error = err;
  }
  const text = events.flatMap((e) => (e.type === 'delta' ? [e.text] : [])).join('');
  const finish = events.find((e) => e.type === 'finish');
  const failures = events.flatMap((e) => (e.type === 'attempt_failed' ? [e.attempt] : []));
  return { events, text, finish: finish?.type === 'finish' ? finish : undefined, failures, error };
}

export const ask = (chain: string[], text = 'Hi', extra: Partial<ChatRequest> = {}): ChatRequest => ({
  chain,
  messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: text }],
  ...extra,
});

/** Both fake upstreams for the enclosing describe block: started before it, reset before each test, closed after. */
export function useFakeUpstreams() {
  const fakes = {} as { openai: FakeOpenAI; anthropic: FakeAnthropic };
  before(async () => {
    fakes.openai = await startFakeOpenAI();
    fakes.anthropic = await startFakeAnthropic();
  });
  after(async () => {
    await fakes.openai.close();
    await fakes.anthropic.close();
  });
  beforeEach(() => {
    fakes.openai.reset();
    fakes.anthropic.reset();
  });
  return fakes;
}
