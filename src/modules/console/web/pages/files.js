// Files: upload, list (with thumbnails for images), download, rename, delete, and the quota.
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { bytes, when } from '../lib/format.js';
import { html } from '../lib/html.js';
import { ErrorNote, Field, Header, useLoad } from '../lib/ui.js';

function Thumb({ file }) {
  // The thumbnail is made by a background job: until it is ready, a plain marker.
  if (file.thumbnail !== 'ready') return html`<span class="file-icon" aria-hidden="true">${file.mimeType.split('/')[0]}</span>`;
  return html`<img class="thumb" src=${`/v1/files/${file.id}/thumbnail`} alt="" loading="lazy" width="48" height="48" />`;
}

export function Files() {
  const [cursor, setCursor] = useState(undefined);
  const [files, error, reload] = useLoad(() => api('GET', `/v1/files?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`), [cursor]);
  const [quota, , reloadQuota] = useLoad(() => api('GET', '/v1/files/quota'), []);
  const [actionError, setActionError] = useState(undefined);
  const [refused, setRefused] = useState([]);
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState('');
  const [renaming, setRenaming] = useState(undefined);

  const refresh = () => (reload(), reloadQuota());

  /** Each file on its own: one the server refuses (its type, its size, the quota) is named with why, and the others still go. */
  async function upload(e) {
    e.preventDefault();
    const form = e.currentTarget;
    const chosen = [...form.elements.file.files];
    if (!chosen.length) return;
    setBusy(true);
    setActionError(undefined);
    setRefused([]);
    setNote('');
    const uploaded = [];
    const refused = [];
    for (const f of chosen) {
      const body = new FormData();
      body.append('file', f, f.name);
      try {
        await api('POST', '/v1/files', { body });
        uploaded.push(f.name);
      } catch (error) {
        refused.push({ name: f.name, error });
      }
    }
    setNote(uploaded.length ? `Uploaded ${uploaded.join(', ')}` : '');
    setRefused(refused);
    form.reset();
    setCursor(undefined);
    refresh();
    setBusy(false);
  }

  async function remove(f) {
    setActionError(undefined);
    try {
      await api('DELETE', `/v1/files/${f.id}`);
      setNote(`Deleted ${f.name}`);
      refresh();
    } catch (err) {
      setActionError(err);
    }
  }

  async function rename(e, f) {
    e.preventDefault();
    setActionError(undefined);
    try {
      await api('PATCH', `/v1/files/${f.id}`, { body: { name: new FormData(e.currentTarget).get('name') } });
      setRenaming(undefined);
      reload();
    } catch (err) {
      setActionError(err);
    }
  }

  return html`<div class="files-page">
    <${Header} title="Files">
      ${quota ? html`<span class="muted quota">${bytes(quota.used)} of ${quota.limit === null ? 'unlimited' : bytes(quota.limit)} used</span>` : null}
    </${Header}>
    <form class="card upload" onSubmit=${upload}>
      <${Field} label="File to upload"><input type="file" name="file" multiple required /></${Field}>
      <button type="submit" disabled=${busy}>${busy ? 'Uploading…' : 'Upload'}</button>
    </form>
    <p role="status" class="muted">${note}</p>
    ${refused.length
      ? html`<ul class="error refused" role="alert" aria-label="Not uploaded">
          ${refused.map((r) => html`<li>${r.name} was not uploaded: ${r.error.message}</li>`)}
        </ul>`
      : null}
    <${ErrorNote} error=${error || actionError} />
    ${files?.data?.length
      ? html`<table class="files-table">
          <caption class="sr-only">Your files</caption>
          <thead><tr><th scope="col"><span class="sr-only">Preview</span></th><th scope="col">Name</th><th scope="col">Type</th><th scope="col">Size</th><th scope="col">Uploaded</th><th scope="col">Actions</th></tr></thead>
          <tbody>
            ${files.data.map(
              (f) => html`<tr key=${f.id} data-file-id=${f.id}>
                <td><${Thumb} file=${f} /></td>
                <td class="name">
                  ${renaming === f.id
                    ? html`<form class="rename" onSubmit=${(e) => rename(e, f)}>
                        <${Field} label=${`New name for ${f.name}`}><input name="name" value=${f.name} required maxlength="255" /></${Field}>
                        <button type="submit">Save name</button>
                        <button type="button" class="secondary" onClick=${() => setRenaming(undefined)}>Cancel</button>
                      </form>`
                    : f.name}
                </td>
                <td>${f.mimeType}</td>
                <td>${bytes(f.size)}</td>
                <td>${when(f.createdAt)}</td>
                <td class="actions">
                  <a href=${`/v1/files/${f.id}/content`} download=${f.name}>Download<span class="sr-only"> ${f.name}</span></a>
                  <button type="button" class="link" onClick=${() => setRenaming(f.id)}>Rename<span class="sr-only"> ${f.name}</span></button>
                  <button type="button" class="link danger-link" onClick=${() => remove(f)}>Delete<span class="sr-only"> ${f.name}</span></button>
                </td>
              </tr>`,
            )}
          </tbody>
        </table>`
      : files
        ? html`<p class="muted">No files yet.</p>`
        : null}
    <div class="row pager">
      ${cursor ? html`<button type="button" class="secondary" onClick=${() => setCursor(undefined)}>Newest</button>` : null}
      ${files?.nextCursor ? html`<button type="button" class="secondary" onClick=${() => setCursor(files.nextCursor)}>Older files</button>` : null}
    </div>
  </div>`;
}
