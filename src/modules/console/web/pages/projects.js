// Projects: agents with their model, tools and named system prompts (one
// active), and the MCP servers that add tools to them.
import { useState } from 'preact/hooks';
import { allPages, api } from '../lib/api.js';
import { when } from '../lib/format.js';
import { html } from '../lib/html.js';
import { go } from '../lib/router.js';
import { ErrorNote, Field, Header, Status, useAction, useLoad } from '../lib/ui.js';

/** Blank inputs mean "the default" (null), not 0 or "". */
const numberOrNull = (v) => (v === '' || v === undefined ? null : Number(v));
const list = (v) => String(v ?? '').split(',').map((s) => s.trim()).filter(Boolean);

/** The settings form, shared by a new project and an existing one. */
function ProjectForm({ project, tools, onSave, submitLabel }) {
  const [error, setError] = useState(undefined);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);

  async function submit(e) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const body = {
      name: f.get('name'),
      description: f.get('description') || null,
      model: f.get('model') || null,
      fallbackModels: list(f.get('fallbackModels')),
      temperature: numberOrNull(f.get('temperature')),
      maxTokens: numberOrNull(f.get('maxTokens')),
      maxToolSteps: numberOrNull(f.get('maxToolSteps')),
      tools: f.getAll('tools'),
      toolApprovals: f.getAll('toolApprovals'),
    };
    if (!project && f.get('systemPrompt')) body.systemPrompt = f.get('systemPrompt');
    setBusy(true);
    setError(undefined);
    setSaved(false);
    try {
      await onSave(body);
      setSaved(true);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  const p = project ?? { tools: [], toolApprovals: [], fallbackModels: [] };
  // Default values, not controlled ones: the form renders again when the tool list or the project
  // list arrives, and a controlled input would lose what was typed before that.
  return html`<form class="card project-form" onSubmit=${submit}>
    <${Field} label="Name"><input name="name" required maxlength="100" defaultValue=${p.name ?? ''} /></${Field}>
    <${Field} label="Description"><input name="description" maxlength="2000" defaultValue=${p.description ?? ''} /></${Field}>
    ${project ? null : html`<${Field} label="System prompt" hint="Saved as the active prompt named “Default”"><textarea name="systemPrompt" rows="4"></textarea></${Field}>`}
    <div class="grid">
      <${Field} label="Model" hint="provider:model; blank for the user's default"><input name="model" defaultValue=${p.model ?? ''} placeholder="openai:gpt-4o-mini" /></${Field}>
      <${Field} label="Fallback models" hint="Comma-separated, tried in order"><input name="fallbackModels" defaultValue=${p.fallbackModels.join(', ')} /></${Field}>
      <${Field} label="Temperature"><input name="temperature" type="number" min="0" max="2" step="0.1" defaultValue=${p.temperature ?? ''} /></${Field}>
      <${Field} label="Max tokens"><input name="maxTokens" type="number" min="1" defaultValue=${p.maxTokens ?? ''} /></${Field}>
      <${Field} label="Max tool steps"><input name="maxToolSteps" type="number" min="1" max="100" defaultValue=${p.maxToolSteps ?? ''} /></${Field}>
    </div>
    <fieldset class="tools">
      <legend>Tools</legend>
      ${tools?.length
        ? html`<table>
            <thead><tr><th scope="col">Tool</th><th scope="col">Offer</th><th scope="col">Ask first</th></tr></thead>
            <tbody>
              ${tools.map(
                (t) => html`<tr key=${t.name}>
                  <th scope="row"><code>${t.name}</code><br /><small class="muted">${t.description}</small></th>
                  <td><input type="checkbox" name="tools" value=${t.name} defaultChecked=${p.tools.includes(t.name)} aria-label=${`Offer ${t.name}`} /></td>
                  <td>
                    ${t.needsApproval
                      ? html`<small class="muted">always</small>`
                      : html`<input type="checkbox" name="toolApprovals" value=${t.name} defaultChecked=${p.toolApprovals.includes(t.name)} aria-label=${`Ask before ${t.name}`} />`}
                  </td>
                </tr>`,
              )}
            </tbody>
          </table>`
        : html`<p class="muted">No tools available.</p>`}
    </fieldset>
    <${ErrorNote} error=${error} />
    <div class="row">
      <button type="submit" disabled=${busy}>${submitLabel}</button>
      ${saved && project ? html`<span role="status" class="ok">Saved</span>` : null}
    </div>
  </form>`;
}

function Prompts({ project, onChange }) {
  const [prompts, error, reload] = useLoad(() => allPages(`/v1/projects/${project.id}/prompts?limit=100`), [project.id]);
  const [actionError, setActionError] = useState(undefined);
  const [editing, setEditing] = useState(undefined);

  async function act(fn) {
    setActionError(undefined);
    try {
      await fn();
      reload();
      onChange();
      return true;
    } catch (err) {
      setActionError(err);
      return false;
    }
  }

  async function edit(e, p) {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    if (await act(() => api('PATCH', `/v1/projects/${project.id}/prompts/${p.id}`, { body: { name: f.get('name'), content: f.get('content') } }))) setEditing(undefined);
  }

  async function add(e) {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    await act(async () => {
      await api('POST', `/v1/projects/${project.id}/prompts`, { body: { name: f.get('name'), content: f.get('content'), activate: f.get('activate') === 'on' } });
      form.reset();
    });
  }

  return html`<section aria-labelledby="prompts-h">
    <h2 id="prompts-h">Prompts</h2>
    <${ErrorNote} error=${error || actionError} />
    <ul class="prompts">
      ${(prompts?.data ?? []).map(
        (p) => html`<li key=${p.id} class=${p.active ? 'active' : ''} aria-current=${p.active ? 'true' : undefined}>
          <div class="row">
            <strong>${p.name}</strong>
            ${p.active ? html`<span class="badge">Active</span>` : html`<button type="button" class="secondary" onClick=${() => act(() => api('POST', `/v1/projects/${project.id}/prompts/${p.id}/activate`))}>Activate ${p.name}</button>`}
            <button type="button" class="link" onClick=${() => setEditing(editing === p.id ? undefined : p.id)}>Edit ${p.name}</button>
            <button type="button" class="link" onClick=${() => act(() => api('DELETE', `/v1/projects/${project.id}/prompts/${p.id}`))}>Delete ${p.name}</button>
          </div>
          ${editing === p.id
            ? html`<form class="edit-prompt" onSubmit=${(e) => edit(e, p)} aria-label=${`Edit ${p.name}`}>
                <${Field} label=${`Name of ${p.name}`}><input name="name" required maxlength="100" value=${p.name} /></${Field}>
                <${Field} label=${`Text of ${p.name}`}><textarea name="content" rows="4" required value=${p.content}></textarea></${Field}>
                <div class="row"><button type="submit">Save prompt</button><button type="button" class="secondary" onClick=${() => setEditing(undefined)}>Cancel</button></div>
              </form>`
            : html`<pre class="prompt-text">${p.content}</pre>`}
        </li>`,
      )}
    </ul>
    <form class="card" onSubmit=${add} aria-label="New prompt">
      <h3>New prompt</h3>
      <${Field} label="Prompt name"><input name="name" required maxlength="100" /></${Field}>
      <${Field} label="Prompt text"><textarea name="content" rows="4" required></textarea></${Field}>
      <label class="check"><input type="checkbox" name="activate" /> Make it the active prompt</label>
      <button type="submit">Add prompt</button>
    </form>
  </section>`;
}

/** Headers from the form's one credential pair: `{Authorization: "Bearer …"}`, or nothing when the value is empty. */
function credentialsOf(f) {
  const value = String(f.get('credentialValue') ?? '').trim();
  if (!value) return undefined;
  return { [String(f.get('credentialHeader') || 'Authorization').trim()]: value };
}

const CredentialFields = ({ id, has }) => html`<div class="grid">
  <${Field} label="Credential header"><input name="credentialHeader" id=${`${id}-header`} defaultValue="Authorization" /></${Field}>
  <${Field} label="Credential value" hint=${has ? 'Set, and never shown again: type a new one to replace it' : 'For example: Bearer <token>. Kept encrypted, never shown again'}>
    <input name="credentialValue" id=${`${id}-value`} type="password" autocomplete="off" />
  </${Field}>
</div>`;

/**
 * One server: its settings (name, URL, description, on/off, approval, the credential),
 * and the tools it offers now, each on or off for the project (the allow-list) and for you.
 */
function McpServer({ project, server, onChange }) {
  const base = `/v1/projects/${project.id}/mcp-servers/${server.id}`;
  const [open, setOpen] = useState(false);
  const [tools, toolsError, reloadTools] = useLoad(() => (open ? api('GET', `${base}/tools`) : Promise.resolve(undefined)), [open, server.updatedAt]);
  const [state, run] = useAction();

  const save = (e) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const body = { name: f.get('name'), url: f.get('url'), description: f.get('description') || null, enabled: f.get('enabled') === 'on', needsApproval: f.get('needsApproval') === 'on' };
    const credentials = credentialsOf(f);
    if (credentials) body.credentials = credentials;
    run(async () => {
      await api('PATCH', base, { body });
      onChange();
    }, `Saved ${body.name}.`);
  };
  const forget = () =>
    run(async () => {
      await api('PATCH', base, { body: { credentials: null } });
      onChange();
    }, 'Credential removed.');
  /** The allow-list: every tool the server offers but this one, or with it; all of them again means no list. */
  const allow = (tool, on) =>
    run(async () => {
      const names = tools.data.filter((x) => (x.name === tool.name ? on : x.allowed)).map((x) => x.name);
      await api('PATCH', base, { body: { allowedTools: names.length === tools.data.length ? null : names } });
      onChange();
    }, on ? `${tool.toolName} is offered.` : `${tool.toolName} is no longer offered.`);
  const mine = (tool, on) =>
    run(async () => {
      await api(on ? 'DELETE' : 'PUT', `/v1/mcp-tools/disabled/${encodeURIComponent(tool.toolName)}`, on ? {} : { body: {} });
      reloadTools();
    }, on ? `${tool.toolName} is on for you.` : `${tool.toolName} is off for you.`);
  const remove = () =>
    run(async () => {
      await api('DELETE', base);
      onChange();
    });

  return html`<li class="server">
    <div class="row">
      <strong>${server.name}</strong> <code>${server.url}</code>
      ${server.enabled ? null : html`<span class="muted">(off)</span>`}
      ${server.hasCredentials ? html`<span class="tag">credential set</span>` : null}
      <button type="button" class="link" aria-expanded=${open} onClick=${() => setOpen(!open)}>${open ? 'Close' : 'Edit'} ${server.name}</button>
      <button type="button" class="link" onClick=${remove}>Remove ${server.name}</button>
    </div>
    ${open
      ? html`<form class="card" onSubmit=${save} aria-label=${`Settings of ${server.name}`}>
          <div class="grid">
            <${Field} label="Name"><input name="name" required defaultValue=${server.name} /></${Field}>
            <${Field} label="URL"><input name="url" type="url" required defaultValue=${server.url} /></${Field}>
            <${Field} label="Description"><input name="description" defaultValue=${server.description ?? ''} /></${Field}>
          </div>
          <label class="check"><input type="checkbox" name="enabled" defaultChecked=${server.enabled} /> On</label>
          <label class="check"><input type="checkbox" name="needsApproval" defaultChecked=${server.needsApproval} /> Ask before each call</label>
          <${CredentialFields} id=${`cred-${server.id}`} has=${server.hasCredentials} />
          <div class="row">
            <button type="submit" disabled=${state.busy}>Save server</button>
            ${server.hasCredentials ? html`<button type="button" class="secondary" onClick=${forget} disabled=${state.busy}>Remove the credential</button>` : null}
          </div>
          <h3>Tools</h3>
          <${ErrorNote} error=${toolsError} />
          ${tools
            ? html`<ul class="server-tools" aria-label=${`Tools of ${server.name}`}>
                ${tools.data.map(
                  (x) => html`<li key=${x.name}>
                    <code>${x.toolName}</code> <span class="muted">${x.description ?? ''}</span>
                    <label class="check"><input type="checkbox" checked=${x.allowed} disabled=${state.busy} onChange=${(e) => allow(x, e.currentTarget.checked)} aria-label=${`Offer ${x.toolName} in this project`} /> Offered</label>
                    <label class="check"><input type="checkbox" checked=${!x.disabled} disabled=${state.busy} onChange=${(e) => mine(x, e.currentTarget.checked)} aria-label=${`${x.toolName} on for me`} /> On for me</label>
                  </li>`,
                )}
              </ul>`
            : toolsError
              ? null
              : html`<p class="muted">Asking the server…</p>`}
        </form>`
      : null}
    <${Status} state=${state} />
  </li>`;
}

function McpServers({ project }) {
  const [servers, error, reload] = useLoad(() => allPages(`/v1/projects/${project.id}/mcp-servers?limit=100`), [project.id]);
  const [state, run] = useAction();

  const add = (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    const f = new FormData(form);
    const body = { name: f.get('name'), url: f.get('url'), description: f.get('description') || undefined };
    const credentials = credentialsOf(f);
    if (credentials) body.credentials = credentials;
    run(async () => {
      await api('POST', `/v1/projects/${project.id}/mcp-servers`, { body });
      form.reset();
      reload();
    }, `Added ${body.name}.`);
  };

  return html`<section aria-labelledby="mcp-h">
    <h2 id="mcp-h">MCP servers</h2>
    <p class="muted">Their allowed tools are offered in this project's turns as <code>server__tool</code>.</p>
    <${ErrorNote} error=${error} />
    ${servers?.data?.length
      ? html`<ul class="servers">${servers.data.map((s) => html`<${McpServer} key=${s.id} project=${project} server=${s} onChange=${reload} />`)}</ul>`
      : html`<p class="muted">None yet.</p>`}
    <form class="card" onSubmit=${add} aria-label="Add an MCP server">
      <div class="grid">
        <${Field} label="Server name"><input name="name" required /></${Field}>
        <${Field} label="Server URL"><input name="url" type="url" required placeholder="https://" /></${Field}>
        <${Field} label="Server description"><input name="description" /></${Field}>
      </div>
      <${CredentialFields} id="cred-new" has=${false} />
      <button type="submit" disabled=${state.busy}>Add server</button>
    </form>
    <${Status} state=${state} />
  </section>`;
}

function Project({ id, tools, onChange }) {
  const [project, error, reload] = useLoad(() => api('GET', `/v1/projects/${id}`), [id]);
  const [deleteError, setDeleteError] = useState(undefined);
  if (error) return html`<${ErrorNote} error=${error} />`;
  if (!project) return html`<p class="loading">Loading…</p>`;

  async function save(body) {
    await api('PATCH', `/v1/projects/${id}`, { body });
    reload();
    onChange();
  }

  async function remove() {
    try {
      await api('DELETE', `/v1/projects/${id}`);
      onChange();
      go('/projects');
    } catch (err) {
      setDeleteError(err);
    }
  }

  return html`<article class="project">
    <${Header} title=${project.name}>
      <span class="muted">Created ${when(project.createdAt)}</span>
      <button type="button" class="danger" onClick=${remove}>Delete project</button>
    </${Header}>
    <${ErrorNote} error=${deleteError} />
    <p class="muted">Active prompt: ${project.activePrompt ? html`<strong>${project.activePrompt.name}</strong>` : 'none'}</p>
    <${ProjectForm} key=${project.id} project=${project} tools=${tools} onSave=${save} submitLabel="Save project" />
    <${Prompts} project=${project} onChange=${() => (reload(), onChange())} />
    <${McpServers} project=${project} />
  </article>`;
}

export function Projects({ route }) {
  const id = route.parts[1];
  const [projects, error, reload] = useLoad(() => allPages('/v1/projects?limit=100'), []);
  // With a project open, the list shows what that project may offer (its MCP servers' tools too).
  const [tools] = useLoad(() => api('GET', id && id !== 'new' ? `/v1/tools?projectId=${id}` : '/v1/tools'), [id]);

  async function create(body) {
    const p = await api('POST', '/v1/projects', { body });
    reload();
    go(`/projects/${p.id}`);
  }

  return html`<div class="projects-page">
    <aside class="projects-list" aria-label="Projects">
      <a class="button" href="#/projects/new">New project</a>
      <${ErrorNote} error=${error} />
      <ul>
        ${(projects?.data ?? []).map((p) => html`<li key=${p.id}><a href=${`#/projects/${p.id}`} aria-current=${p.id === id ? 'page' : undefined}>${p.name}</a></li>`)}
      </ul>
    </aside>
    <div class="projects-main">
      ${id === 'new'
        ? html`<${Header} title="New project" /><${ProjectForm} tools=${tools?.data} onSave=${create} submitLabel="Create project" />`
        : id
          ? html`<${Project} key=${id} id=${id} tools=${tools?.data} onChange=${reload} />`
          : html`<${Header} title="Projects" /><p class="muted">${projects?.data?.length ? 'Choose a project, or make a new one.' : 'No projects yet: make one to give chats a model, a system prompt and tools.'}</p>`}
    </div>
  </div>`;
}
