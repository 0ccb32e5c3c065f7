// Usage: tokens and cost per day by model, project or API key (uPlot charts
// whose legend shows the hovered day's numbers), API requests and errors,
// what you store against your quota, and your budgets with what is left.
import { useEffect, useRef, useState } from 'preact/hooks';
import { allPages, api } from '../lib/api.js';
import { bytes, count, money, when } from '../lib/format.js';
import { html } from '../lib/html.js';
import { ErrorNote, Field, Header, useLoad } from '../lib/ui.js';

let uplot;
/**
 * uPlot and its stylesheet (a <link> to the vendored file, which style-src
 * 'self' allows), fetched the first time a chart is drawn: the console's
 * first load, the sign-in form included, does not carry the chart library.
 */
function loadUPlot() {
  if (!document.querySelector('link[data-uplot]')) {
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = '/console/vendor/uplot.css';
    link.dataset.uplot = '';
    document.head.append(link);
  }
  uplot ??= import('uplot').then((m) => m.default);
  return uplot;
}

// Readable on the light and the dark background alike.
const PALETTE = ['#4c6ef5', '#f08c00', '#2f9e44', '#e03131', '#ae3ec9', '#1098ad', '#a61e4d', '#5c940d'];
const DAY = 86_400_000;
const iso = (t) => new Date(t).toISOString().slice(0, 10);

const RANGES = {
  month: { label: 'This month', from: () => iso(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), 1)) },
  7: { label: 'Last 7 days', from: () => iso(Date.now() - 6 * DAY) },
  30: { label: 'Last 30 days', from: () => iso(Date.now() - 29 * DAY) },
  90: { label: 'Last 90 days', from: () => iso(Date.now() - 89 * DAY) },
};

const GROUPINGS = { model: 'Model', project: 'Project', api_key: 'API key' };

/** Every UTC day of the range, so a day without calls is a zero, not a gap joined over. */
function daysOf(from, to) {
  const days = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += DAY) days.push(iso(t));
  return days;
}

/** A row's group key and the name people know it by. */
function groupOf(row, by, names) {
  if (by === 'model') return { key: `${row.provider}:${row.model}`, name: `${row.provider}:${row.model}` };
  if (by === 'project') return { key: row.projectId ?? 'none', name: row.projectId ? names.projects.get(row.projectId) ?? 'a deleted project' : 'No project' };
  return { key: row.apiKeyId ?? 'none', name: row.apiKeyId ? names.keys.get(row.apiKeyId) ?? 'a revoked key' : 'Console and sessions' };
}

/**
 * A uPlot chart of one value per day and series. Hovering (or moving the
 * cursor with the keyboard focus on the plot) puts that day's numbers in the
 * legend, formatted by `format`; the table beside each chart has them too.
 */
function Chart({ title, days, series, format }) {
  const box = useRef();
  // Drawn again when the numbers change, not on every render of the page.
  const numbers = JSON.stringify([days, series]);
  useEffect(() => {
    const el = box.current;
    const style = getComputedStyle(document.documentElement);
    const fg = style.getPropertyValue('--fg').trim() || '#1f2328';
    const line = style.getPropertyValue('--line').trim() || '#d1d9e0';
    const axis = { stroke: fg, grid: { stroke: line, width: 1 }, ticks: { stroke: line, width: 1 } };
    const opts = {
      width: Math.max(280, el.clientWidth),
      height: 240,
      series: [
        { label: 'Day', value: (u, t) => (t === null ? '—' : iso(t * 1000)) },
        ...series.map((s, i) => ({ label: s.name, stroke: PALETTE[i % PALETTE.length], fill: `${PALETTE[i % PALETTE.length]}22`, width: 2, points: { show: true, size: 6 }, value: (u, v) => (v === null ? '—' : format(v)) })),
      ],
      // Days on x (never hours: the reports are per UTC day); y as wide as its longest label, costs have many decimals.
      axes: [{ ...axis, incrs: [1, 2, 7, 14, 30, 60].map((d) => d * 86_400), values: (u, vals) => vals.map((v) => iso(v * 1000).slice(5)) }, { ...axis, values: (u, vals) => vals.map((v) => format(v)), size: (u, values) => (values ? Math.max(...values.map((v) => String(v).length)) * 8 + 24 : 50) }],
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
      legend: { live: true },
      cursor: { points: { size: 8 } },
    };
    const data = [days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000), ...series.map((s) => s.values)];
    let plot;
    let live = true;
    const resize = new ResizeObserver(() => plot?.setSize({ width: Math.max(280, el.clientWidth), height: 240 }));
    loadUPlot().then((UPlot) => {
      if (!live) return;
      plot = new UPlot(opts, data, el);
      resize.observe(el);
    });
    return () => {
      live = false;
      resize.disconnect();
      plot?.destroy();
    };
  }, [numbers, format]);
  return html`<figure class="usage-chart card" aria-label=${title}>
    <figcaption>${title}</figcaption>
    <div ref=${box} class="usage-plot"></div>
    <p class="sr-only">Hover a day for its numbers in the legend; the table below the charts has them all.</p>
  </figure>`;
}

/** One value per day and group, from report rows grouped by day and `by`. */
function seriesOf(rows, days, by, names, value) {
  const groups = new Map();
  for (const row of rows) {
    const g = groupOf(row, by, names);
    if (!groups.has(g.key)) groups.set(g.key, { name: g.name, values: days.map(() => 0), total: 0 });
    const s = groups.get(g.key);
    const i = days.indexOf(row.day);
    if (i >= 0) s.values[i] += value(row);
    s.total += value(row);
  }
  return [...groups.values()].sort((a, b) => b.total - a.total);
}

function Totals({ totals }) {
  const items = [
    ['Calls', count(totals.requests)],
    ['Errors', count(totals.failed)],
    ['Input tokens', count(totals.inputTokens)],
    ['Output tokens', count(totals.outputTokens)],
    ['Total tokens', count(totals.inputTokens + totals.outputTokens)],
    ['Cost', money(Number(totals.cost))],
  ];
  return html`<dl class="usage-totals">${items.map(([label, value]) => html`<div class="card"><dt>${label}</dt><dd>${value}</dd></div>`)}</dl>`;
}

function Breakdown({ rows, by, names }) {
  const groups = new Map();
  for (const row of rows) {
    const g = groupOf(row, by, names);
    const t = groups.get(g.key) ?? { name: g.name, requests: 0, failed: 0, inputTokens: 0, outputTokens: 0, costMicros: 0 };
    for (const k of ['requests', 'failed', 'inputTokens', 'outputTokens', 'costMicros']) t[k] += row[k];
    groups.set(g.key, t);
  }
  const list = [...groups.values()].sort((a, b) => b.costMicros - a.costMicros || b.inputTokens + b.outputTokens - (a.inputTokens + a.outputTokens));
  if (!list.length) return html`<p class="muted">No calls in this range.</p>`;
  return html`<div class="table-scroll"><table class="usage-table">
    <caption class="sr-only">Usage by ${GROUPINGS[by].toLowerCase()}</caption>
    <thead><tr><th scope="col">${GROUPINGS[by]}</th><th scope="col">Calls</th><th scope="col">Errors</th><th scope="col">Input tokens</th><th scope="col">Output tokens</th><th scope="col">Cost</th></tr></thead>
    <tbody>${list.map((g) => html`<tr><th scope="row">${g.name}</th><td>${count(g.requests)}</td><td>${count(g.failed)}</td><td>${count(g.inputTokens)}</td><td>${count(g.outputTokens)}</td><td>${money(g.costMicros / 1e6)}</td></tr>`)}</tbody>
  </table></div>`;
}

function Storage() {
  const [data, error] = useLoad(() => Promise.all([api('GET', '/v1/usage/storage'), api('GET', '/v1/files/quota')]));
  if (error) return html`<${ErrorNote} error=${error} />`;
  if (!data) return html`<p class="muted">Loading…</p>`;
  const [storage, quota] = data;
  const pct = quota.limit ? Math.min(100, (quota.used / quota.limit) * 100) : 0;
  return html`<div class="usage-storage">
    <div class="card">
      <label for="files-quota">Files: ${bytes(quota.used)} of ${bytes(quota.limit)} (${pct.toFixed(pct < 1 && pct > 0 ? 2 : 0)} %), ${bytes(quota.remaining)} left</label>
      <meter id="files-quota" min="0" max=${quota.limit} value=${quota.used} high=${quota.limit * 0.8} optimum="0">${pct.toFixed(0)} %</meter>
    </div>
    <div class="table-scroll"><table>
      <caption>Text you keep: ${bytes(storage.bytes)}</caption>
      <thead><tr><th scope="col">What</th><th scope="col">Items</th><th scope="col">Size</th></tr></thead>
      <tbody>${storage.sources.map((s) => html`<tr><th scope="row">${s.source}</th><td>${count(s.items)}</td><td>${bytes(s.bytes)}</td></tr>`)}</tbody>
    </table></div>
  </div>`;
}

const SCOPE_NAMES = { default: 'Everyone (default)', user: 'You' };

function Budgets({ names, keys, projects }) {
  const [limits, error, reload] = useLoad(() => api('GET', '/v1/usage/limits'));
  const [formError, setFormError] = useState(undefined);
  const subject = (b) => SCOPE_NAMES[b.scope] ?? (b.scope === 'api_key' ? `Key ${names.keys.get(b.subjectId) ?? b.subjectId}` : `Project ${names.projects.get(b.subjectId) ?? b.subjectId}`);
  async function save(e) {
    e.preventDefault();
    // Kept: the event's currentTarget is gone once the request has been awaited.
    const el = e.currentTarget;
    const form = new FormData(el);
    const [scope, subjectId] = String(form.get('subject')).split('/');
    const body = { scope, subjectId, period: form.get('period') };
    if (form.get('usd')) body.limitUsd = String(form.get('usd'));
    if (form.get('tokens')) body.limitTokens = Number(form.get('tokens'));
    if (!body.limitUsd && !body.limitTokens) return setFormError(new Error('Give a limit in USD, in tokens, or both.'));
    try {
      await api('PUT', '/v1/budgets', { body });
      setFormError(undefined);
      el.reset();
      reload();
    } catch (err) {
      setFormError(err);
    }
  }
  async function remove(id) {
    try {
      await api('DELETE', `/v1/budgets/${id}`);
      reload();
    } catch (err) {
      setFormError(err);
    }
  }
  const left = (limit, used) => (limit === null ? null : Math.max(0, limit - used));
  return html`<div class="usage-budgets">
    <${ErrorNote} error=${error} />
    ${limits && !limits.data.length ? html`<p class="muted">No budget applies to you.</p>` : null}
    ${limits?.data.length
      ? html`<div class="table-scroll"><table>
          <caption class="muted">Days and months in ${limits.timezone} (your preferences)</caption>
          <thead><tr><th scope="col">Budget</th><th scope="col">Period</th><th scope="col">Limit</th><th scope="col">Used</th><th scope="col">Left</th><th scope="col">Resets</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>${limits.data.map((b) => {
            const usdLeft = left(b.limitMicros, b.usedMicros);
            const tokensLeft = left(b.limitTokens, b.usedTokens);
            const share = Math.max(b.limitMicros ? b.usedMicros / b.limitMicros : 0, b.limitTokens ? b.usedTokens / b.limitTokens : 0);
            return html`<tr>
              <th scope="row">${subject(b)}</th>
              <td>${b.period}</td>
              <td>${[b.limit !== null ? money(Number(b.limit)) : null, b.limitTokens !== null ? `${count(b.limitTokens)} tokens` : null].filter(Boolean).join(' · ')}</td>
              <td>${[b.limitMicros !== null ? money(b.usedMicros / 1e6) : null, b.limitTokens !== null ? `${count(b.usedTokens)} tokens` : null].filter(Boolean).join(' · ')}
                <meter min="0" max="1" value=${Math.min(1, share)} high="0.8" optimum="0" aria-label=${`${subject(b)}: share used`}></meter></td>
              <td><strong>${[usdLeft !== null ? money(usdLeft / 1e6) : null, tokensLeft !== null ? `${count(tokensLeft)} tokens` : null].filter(Boolean).join(' · ')}</strong></td>
              <td>${b.resetsAt ? when(b.resetsAt) : 'never'}</td>
              <td>${b.scope === 'api_key' || b.scope === 'project' ? html`<button type="button" class="secondary" aria-label=${`Remove the budget of ${subject(b)}`} onClick=${() => remove(b.id)}>Remove</button>` : null}</td>
            </tr>`;
          })}</tbody>
        </table></div>`
      : null}
    ${keys.length || projects.length
      ? html`<form class="card usage-budget-form" onSubmit=${save} aria-labelledby="budget-form-title">
          <h3 id="budget-form-title">Cap a key or a project</h3>
          <div class="usage-budget-row">
            <${Field} label="Budget for"><select name="subject">
              ${keys.map((k) => html`<option value=${`api_key/${k.id}`}>Key ${k.name}</option>`)}
              ${projects.map((p) => html`<option value=${`project/${p.id}`}>Project ${p.name}</option>`)}
            </select><//>
            <${Field} label="Period"><select name="period"><option value="day">Day</option><option value="month" selected>Month</option><option value="total">Total</option></select><//>
            <${Field} label="Limit in USD"><input name="usd" inputmode="decimal" pattern="[0-9]+([.][0-9]{1,6})?" /><//>
            <${Field} label="Limit in tokens"><input name="tokens" type="number" min="1" step="1" /><//>
          </div>
          <${ErrorNote} error=${formError} />
          <button type="submit">Set budget</button>
        </form>`
      : null}
  </div>`;
}

export function Usage() {
  const [range, setRange] = useState('month');
  const [by, setBy] = useState('model');
  const [n, setN] = useState(0);
  const from = RANGES[range].from();
  const to = iso(Date.now());
  const [data, error] = useLoad(
    () =>
      Promise.all([
        api('GET', `/v1/usage?from=${from}&to=${to}&groupBy=day,${by}`),
        api('GET', `/v1/usage/requests?from=${from}&to=${to}&groupBy=day`),
        allPages('/v1/api-keys?limit=100'),
        allPages('/v1/projects?limit=100'),
      ]),
    [range, by, n],
  );
  const [report, requests, keys, projects] = data ?? [];
  const names = data ? { keys: new Map(keys.data.map((k) => [k.id, k.name])), projects: new Map(projects.data.map((p) => [p.id, p.name])) } : undefined;
  const days = daysOf(from, to);
  const charts = data
    ? {
        tokens: seriesOf(report.data, days, by, names, (r) => r.inputTokens + r.outputTokens),
        cost: seriesOf(report.data, days, by, names, (r) => r.costMicros / 1e6),
        calls: [
          { name: 'API requests', values: days.map((d) => requests.data.find((r) => r.day === d)?.requests ?? 0) },
          { name: 'Failed calls', values: days.map((d) => report.data.filter((r) => r.day === d).reduce((s, r) => s + r.failed, 0)) },
        ],
      }
    : undefined;
  return html`<div class="usage">
    <${Header} title="Usage">
      <button type="button" class="secondary" onClick=${() => setN((x) => x + 1)}>Refresh</button>
    <//>
    <div class="usage-controls">
      <${Field} label="Range"><select value=${range} onChange=${(e) => setRange(e.currentTarget.value)}>${Object.entries(RANGES).map(([k, r]) => html`<option value=${k}>${r.label}</option>`)}</select><//>
      <${Field} label="Break down by"><select value=${by} onChange=${(e) => setBy(e.currentTarget.value)}>${Object.entries(GROUPINGS).map(([k, l]) => html`<option value=${k}>${l}</option>`)}</select><//>
    </div>
    <${ErrorNote} error=${error} />
    ${data
      ? html`<section aria-labelledby="usage-models-title">
          <h2 id="usage-models-title">Calls, ${from} to ${to} (UTC)</h2>
          <p class="muted">Model calls of every kind (chat, the gateway, titles, embeddings, documents, jobs), and notification deliveries, which have no tokens: their provider is the channel, their model the category.</p>
          <${Totals} totals=${report.totals} />
          ${report.totals.unpricedRequests ? html`<p class="muted">${count(report.totals.unpricedRequests)} calls to models without a known price are not in the cost.</p>` : null}
          <div class="usage-charts">
            <${Chart} title=${`Tokens per day by ${GROUPINGS[by].toLowerCase()}`} days=${days} series=${charts.tokens.length ? charts.tokens : [{ name: 'Tokens', values: days.map(() => 0) }]} format=${count} />
            <${Chart} title=${`Cost per day by ${GROUPINGS[by].toLowerCase()}`} days=${days} series=${charts.cost.length ? charts.cost : [{ name: 'Cost', values: days.map(() => 0) }]} format=${money} />
            <${Chart} title="Requests and errors per day" days=${days} series=${charts.calls} format=${count} />
          </div>
          <${Breakdown} rows=${report.data} by=${by} names=${names} />
          <p class="muted">API requests in this range: ${count(requests.totals.requests)}; received ${bytes(requests.totals.bytesIn)}, sent ${bytes(requests.totals.bytesOut)}.</p>
        </section>
        <section aria-labelledby="usage-budgets-title">
          <h2 id="usage-budgets-title">Budgets</h2>
          <${Budgets} names=${names} keys=${keys.data} projects=${projects.data} key=${n} />
        </section>`
      : error ? null : html`<p class="muted">Loading…</p>`}
    <section aria-labelledby="usage-storage-title">
      <h2 id="usage-storage-title">Storage</h2>
      <${Storage} key=${n} />
    </section>
  </div>`;
}
