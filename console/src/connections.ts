/** Connections: search, list with token status, add, edit, delete, test. */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { call, problemsOf, type ConnectionSummary, type ConsoleState } from './api.js';
import { ConnectionForm } from './connection-form.js';

interface Editing {
  key: string | undefined;
  original: Record<string, unknown>;
  version: string;
}

function tokenStatus(c: ConnectionSummary): string {
  if (c.tokenCached && c.expiresInSeconds !== null) return `Cached, expires in ${c.expiresInSeconds} s`;
  return 'No token cached';
}

/** "42 s", "5 min", "3 h", "2 d": a key's age at a glance. */
function age(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86400)} d`;
}

/** Client authentication, with the secret in use (clientSecret.previous) or the managed keys' JWKS URL and ages. */
function clientAuthCell(c: ConnectionSummary) {
  const keys = c.managedKeys;
  return html`${c.clientAuth}
  ${
    c.secretInUse === null
      ? null
      : html` <span class=${c.secretInUse === 'previous' ? 'badge bad' : 'badge'}>${c.secretInUse} secret</span>`
  }
  ${
    keys === null
      ? null
      : html`<div>JWKS URL for the partner: <code>${`${window.location.origin}${keys.jwksPath}`}</code></div>
          <ul class="keys">
            ${keys.keys.map((k) => html`<li key=${k.kid}><code>${k.kid.slice(0, 12)}…</code> ${k.state}, ${age(k.ageSeconds)} old</li>`)}
          </ul>`
  }`;
}

export function Connections(props: { state: ConsoleState; editable: boolean; viewer: boolean; refreshState: () => Promise<void> }) {
  const [list, setList] = useState<ConnectionSummary[] | undefined>(undefined);
  const [query, setQuery] = useState('');
  const [editing, setEditing] = useState<Editing | undefined>(undefined);
  const [message, setMessage] = useState<{ text: string; failed: boolean } | undefined>(undefined);

  const load = async () => {
    const answer = await call<{ connections: ConnectionSummary[] }>('GET', '/connections');
    if (answer.ok) setList(answer.body.connections);
  };
  useEffect(() => {
    void load();
  }, []);

  const edit = async (key: string | undefined) => {
    setMessage(undefined);
    if (key === undefined) {
      const current = await call<ConsoleState>('GET', '/console/state');
      setEditing({ key: undefined, original: {}, version: current.body.version });
      return;
    }
    const answer = await call<{ connection: Record<string, unknown>; version: string }>('GET', `/connections/${encodeURIComponent(key)}`);
    if (!answer.ok) return setMessage({ text: problemsOf(answer)[0]?.message ?? 'Cannot read the connection.', failed: true });
    setEditing({ key, original: answer.body.connection, version: answer.body.version });
  };

  const remove = async (key: string) => {
    if (!window.confirm(`Delete connection ${key} from the config file?`)) return;
    const current = await call<ConsoleState>('GET', '/console/state');
    const answer = await call('DELETE', `/connections/${encodeURIComponent(key)}?version=${encodeURIComponent(current.body.version)}`);
    if (answer.ok) setMessage({ text: `Deleted connection ${key}.`, failed: false });
    else if (answer.body.code === 'CONNECTION_IN_USE')
      setMessage({
        text: `Cannot delete ${key}: used by route${answer.body.routes?.length === 1 ? '' : 's'} ${answer.body.routes?.join(', ') ?? ''}.`,
        failed: true,
      });
    else setMessage({ text: answer.body.detail ?? `Delete failed (${answer.status}).`, failed: true });
    await load();
  };

  const test = async (key: string) => {
    setMessage({ text: `Testing ${key}…`, failed: false });
    const answer = await call<{
      ok: boolean;
      expiresIn: number | null;
      tookMs: number;
      reason?: string;
      oauthError?: string;
      detail?: string;
    }>('POST', `/connections/${encodeURIComponent(key)}/test`);
    const b = answer.body;
    if (answer.ok && b.ok)
      setMessage({
        text: `Test of ${key} succeeded: token issued${b.expiresIn === null ? '' : `, expires in ${b.expiresIn} s`} (${b.tookMs} ms).`,
        failed: false,
      });
    else
      setMessage({
        text: `Test of ${key} failed: ${b.oauthError ?? b.reason ?? b.code ?? answer.status}${b.detail === undefined ? '' : ` — ${b.detail}`}`,
        failed: true,
      });
    await load();
  };

  if (editing !== undefined) {
    return html`<${ConnectionForm}
      key=${editing.key ?? 'new'}
      connectionKey=${editing.key}
      original=${editing.original}
      version=${editing.version}
      state=${props.state}
      taken=${(list ?? []).map((c) => c.connection)}
      editable=${props.editable}
      onDone=${(text: string) => {
        setEditing(undefined);
        setMessage({ text, failed: false });
        void load();
        void props.refreshState();
      }}
      onCancel=${() => setEditing(undefined)}
    />`;
  }

  const needle = query.trim().toLowerCase();
  const shown = (list ?? []).filter(
    (c) => needle === '' || c.connection.toLowerCase().includes(needle) || c.displayName.toLowerCase().includes(needle),
  );
  return html`<section aria-labelledby="connections-title">
    <div class="toolbar">
      <h1 id="connections-title" tabindex="-1">Connections</h1>
      <input
        type="search"
        aria-label="Search connections"
        placeholder="Search connections"
        value=${query}
        onInput=${(e: Event) => setQuery((e.target as HTMLInputElement).value)}
      />
      ${props.viewer ? null : html`<button type="button" disabled=${!props.editable} onClick=${() => void edit(undefined)}>Add connection</button>`}
    </div>
    <p role="status" class=${message?.failed === true ? 'notice failed' : 'notice'}>${message?.text ?? ''}</p>
    ${
      list === undefined
        ? html`<p>Loading…</p>`
        : html`<table class="list">
              <thead>
                <tr>
                  <th scope="col">Key</th>
                  <th scope="col">Display name</th>
                  <th scope="col">Client authentication</th>
                  <th scope="col">Token status</th>
                  <th scope="col"><span class="visually-hidden">Actions</span></th>
                </tr>
              </thead>
              <tbody>
                ${shown.map(
                  (c) =>
                    html`<tr key=${c.connection}>
                      <th scope="row">${c.connection}</th>
                      <td>${c.displayName}</td>
                      <td>${clientAuthCell(c)}</td>
                      <td><span class=${c.tokenCached ? 'badge ok' : 'badge'}>${tokenStatus(c)}</span></td>
                      <td class="buttons">
                        ${
                          props.viewer
                            ? null
                            : html`<button
                                  type="button"
                                  class="secondary"
                                  aria-describedby=${`name-${c.connection}`}
                                  onClick=${() => void edit(c.connection)}
                                >
                                  Edit
                                </button>
                                <button
                                  type="button"
                                  class="secondary"
                                  disabled=${!props.editable}
                                  onClick=${() => void remove(c.connection)}
                                >
                                  Delete
                                </button>`
                        }
                        <button
                          type="button"
                          disabled=${props.state.authRequired && !props.state.signedIn}
                          onClick=${() => void test(c.connection)}
                        >
                          Test
                        </button>
                        <span hidden id=${`name-${c.connection}`}>${c.connection}</span>
                      </td>
                    </tr>`,
                )}
              </tbody>
            </table>
            ${shown.length === 0 ? html`<p>No connection matches.</p>` : null}`
    }
  </section>`;
}
