// A fake OpenAI upstream in a process of its own, for the gateway bench: it
// prints its URL, then takes its default script (reply, delay per chunk) over IPC.
import { startFakeOpenAI, type Script } from '../test/support/fake-openai.ts';

const fake = await startFakeOpenAI({ apiKey: 'sk-bench' });
// The fake records every request for tests; a bench sends hundreds of thousands.
setInterval(() => (fake.state.requests.length = 0), 1000).unref();
process.on('message', (msg: { defaults: Script }) => {
  fake.state.defaults = msg.defaults;
  process.send!({ ok: true });
});
process.on('disconnect', () => process.exit(0));
process.send!({ url: fake.url });
