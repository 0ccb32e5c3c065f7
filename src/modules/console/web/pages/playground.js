// Playground: one prompt sent to two to four models at once through the
// OpenAI-compatible gateway, answers side by side with their time to first
// token, total time, tokens and cost; the system prompt saved to a project.
import { useRef, useState } from 'preact/hooks';
import { allPages, api, ApiError, frames, stream } from '../lib/api.js';
import { count, money, ms } from '../lib/format.js';
import { html } from '../lib/html.js';
import { markdown } from '../lib/markdown.js';
import { ErrorNote, Field, Header, useLoad } from '../lib/ui.js';

const MIN_MODELS = 2;
const MAX_MODELS = 4;

/**
 * The gateway's chunks (`data: {...}` frames ending in `data: [DONE]`). Not
 * lib/api.js `events()`: `[DONE]` is not JSON, and an `error` frame may end a
 * stream that broke after its first token.
 */
async function* chunks(res) {
  for await (const { data } of frames(res)) {
    if (!data) continue;
    if (data.trim() === '[DONE]') return;
    yield JSON.parse(data);
  }
}

/**
 * What a call cost, from the catalog's prices (USD per million tokens), as
 * Parley's metering counts it: cached input tokens are part of the input and
 * charged at the cached price. The gateway's answer carries tokens, not cost
 * (it speaks OpenAI's format); the usage page shows the metered amounts.
 */
export function costOf(pricing, usage) {
  if (!pricing || !usage) return null;
  const cached = Math.min(usage.prompt_tokens_details?.cached_tokens ?? 0, usage.prompt_tokens);
  const fresh = usage.prompt_tokens - cached;
  return (fresh * pricing.input + cached * (pricing.cachedInput ?? pricing.input) + usage.completion_tokens * pricing.output) / 1e6;
}

/** Sends the prompt to one model, reporting progress through `update`. */
async function runOne(model, request, update, signal) {
  const started = performance.now();
  let text = '';
  let ttft = null;
  try {
    const res = await stream('POST', '/v1/chat/completions', {
      body: { ...request, model: model.id, stream: true, stream_options: { include_usage: true } },
      signal,
    });
    for await (const c of chunks(res)) {
      if (c.error) throw new Error(c.error.message);
      const delta = c.choices?.[0]?.delta?.content;
      if (delta) {
        ttft ??= performance.now() - started;
        text += delta;
        update({ text, ttft, answeredBy: c.model });
      }
      if (c.usage) update({ usage: c.usage, answeredBy: c.model });
    }
    update({ done: true, total: performance.now() - started, ttft: ttft ?? performance.now() - started });
  } catch (err) {
    // Stopped by the user: hanging up also stops the upstream generation (and its bill) on the server.
    if (signal?.aborted) return update({ done: true, stopped: true, total: performance.now() - started });
    // The gateway's errors are OpenAI-shaped (`{error: {message}}`), not problems.
    const message = err instanceof ApiError ? err.problem?.error?.message ?? err.message : err.message;
    update({ done: true, error: message, total: performance.now() - started });
  }
}

function Result({ model, result }) {
  const usage = result?.usage;
  const cost = costOf(model.pricing, usage);
  const busy = result && !result.done;
  return html`<article class="pg-result card" aria-labelledby=${`pg-${model.id}`} aria-busy=${busy ? 'true' : 'false'} data-model=${model.id}>
    <h3 id=${`pg-${model.id}`}>${model.id}</h3>
    ${result?.answeredBy && result.answeredBy !== model.id ? html`<p class="muted">answered by ${result.answeredBy}</p>` : null}
    <div class="md pg-answer" dangerouslySetInnerHTML=${{ __html: markdown(result?.text ?? '') }} />
    ${busy && !result.text ? html`<p class="muted">Waiting for the first token…</p>` : null}
    ${result?.error ? html`<p class="error" role="alert">${result.error}</p>` : null}
    ${result?.stopped ? html`<p class="muted">Stopped.</p>` : null}
    <dl class="pg-stats" aria-label=${`Measurements of ${model.id}`}>
      <div><dt>Time to first token</dt><dd>${result?.ttft != null ? ms(result.ttft) : '—'}</dd></div>
      <div><dt>Total time</dt><dd>${result?.done ? ms(result.total) : '—'}</dd></div>
      <div><dt>Tokens</dt><dd>${usage ? `${count(usage.prompt_tokens)} in · ${count(usage.completion_tokens)} out` : '—'}</dd></div>
      <div><dt>Cost</dt><dd>${usage ? (cost === null ? 'price unknown' : money(cost)) : '—'}</dd></div>
    </dl>
  </article>`;
}

function SavePrompt({ system }) {
  const [projects, error] = useLoad(() => allPages('/v1/projects?limit=100'));
  const [state, setState] = useState({ error: undefined, saved: undefined });
  async function save(e) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const projectId = form.get('project');
    if (!system.trim()) return setState({ error: new Error('Write a system prompt first: that is what a project prompt is.') });
    try {
      const prompt = await api('POST', `/v1/projects/${projectId}/prompts`, { body: { name: String(form.get('name')).trim(), content: system, activate: form.get('activate') === 'on' } });
      const project = projects.data.find((p) => p.id === projectId);
      setState({ saved: `Saved "${prompt.name}" to ${project?.name ?? 'the project'}.` });
    } catch (err) {
      setState({ error: err });
    }
  }
  if (error) return html`<${ErrorNote} error=${error} />`;
  if (!projects) return null;
  if (!projects.data.length) return html`<p class="muted">To save this system prompt, first <a href="#/projects">create a project</a>.</p>`;
  return html`<form class="card pg-save" onSubmit=${save} aria-labelledby="pg-save-title">
    <h2 id="pg-save-title">Save as a project prompt</h2>
    <div class="pg-save-row">
      <${Field} label="Project"><select name="project">${projects.data.map((p) => html`<option value=${p.id}>${p.name}</option>`)}</select><//>
      <${Field} label="Prompt name"><input name="name" required maxlength="100" /><//>
    </div>
    <label class="pg-check"><input type="checkbox" name="activate" /> Make it the project's active prompt</label>
    <${ErrorNote} error=${state.error} />
    <p role="status">${state.saved ?? ''}</p>
    <button type="submit">Save prompt</button>
  </form>`;
}

export function Playground() {
  const [catalog, error] = useLoad(() => api('GET', '/v1/ai/models'));
  const [chosen, setChosen] = useState(undefined);
  const [system, setSystem] = useState('');
  const [results, setResults] = useState({});
  const [ran, setRan] = useState([]);
  const controller = useRef();
  const models = catalog?.data ?? [];
  // Two models to start with: the default and the next one in the catalog.
  const picked = chosen ?? (models.length ? [catalog.defaultModel ?? models[0].id, models.find((m) => m.id !== catalog.defaultModel)?.id ?? models[0].id] : []);
  const running = ran.some((id) => results[id] && !results[id].done);

  async function run(e) {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const messages = [];
    if (system.trim()) messages.push({ role: 'system', content: system });
    messages.push({ role: 'user', content: String(form.get('user')) });
    const request = { messages };
    if (form.get('temperature') !== '') request.temperature = Number(form.get('temperature'));
    if (form.get('maxTokens') !== '') request.max_tokens = Number(form.get('maxTokens'));
    const ids = [...new Set(picked)];
    controller.current = new AbortController();
    setRan(ids);
    setResults(Object.fromEntries(ids.map((id) => [id, { done: false }])));
    await Promise.all(
      ids.map((id) => runOne(models.find((m) => m.id === id) ?? { id }, request, (patch) => setResults((r) => ({ ...r, [id]: { ...r[id], ...patch } })), controller.current.signal)),
    );
  }

  const setPick = (i, id) => setChosen(picked.map((p, j) => (j === i ? id : p)));
  return html`<div class="playground">
    <${Header} title="Playground" />
    <p class="muted">One prompt, two to four models at once, through the OpenAI-compatible gateway. Costs use the catalog's prices; calls here count in your usage.</p>
    <${ErrorNote} error=${error} />
    <form class="card pg-form" onSubmit=${run}>
      <fieldset class="pg-models">
        <legend>Models</legend>
        ${picked.map(
          (id, i) => html`<div class="pg-model">
            <${Field} label=${`Model ${i + 1}`}>
              <select value=${id} onChange=${(e) => setPick(i, e.currentTarget.value)}>${models.map((m) => html`<option value=${m.id}>${m.id}</option>`)}</select>
            <//>
            ${picked.length > MIN_MODELS ? html`<button type="button" class="secondary" aria-label=${`Remove model ${i + 1}`} onClick=${() => setChosen(picked.filter((_, j) => j !== i))}>Remove</button>` : null}
          </div>`,
        )}
        ${picked.length < MAX_MODELS && models.length ? html`<button type="button" class="secondary" onClick=${() => setChosen([...picked, models.find((m) => !picked.includes(m.id))?.id ?? models[0].id])}>Add a model</button>` : null}
      </fieldset>
      <${Field} label="System prompt"><textarea rows="3" value=${system} onInput=${(e) => setSystem(e.currentTarget.value)}></textarea><//>
      <${Field} label="User message"><textarea name="user" rows="4" required></textarea><//>
      <div class="pg-params">
        <${Field} label="Temperature" hint="0–2; empty for the model's default"><input name="temperature" type="number" min="0" max="2" step="0.1" /><//>
        <${Field} label="Max tokens" hint="Empty for the model's default"><input name="maxTokens" type="number" min="1" step="1" /><//>
      </div>
      <div class="pg-run">
        <button type="submit" disabled=${running || !models.length}>${running ? 'Running…' : 'Run'}</button>
        ${running ? html`<button type="button" class="secondary" onClick=${() => controller.current?.abort()}>Stop</button>` : null}
      </div>
    </form>
    ${ran.length
      ? html`<section class="pg-results" aria-label="Answers" data-count=${ran.length}>
          ${ran.map((id) => html`<${Result} key=${id} model=${models.find((m) => m.id === id) ?? { id }} result=${results[id]} />`)}
        </section>`
      : null}
    <${SavePrompt} system=${system} />
  </div>`;
}
