/** Connections: search, list with token status, add, edit, delete, test. */
import { useEffect, useState } from 'preact/hooks';
import {
  call,
  problemsOf,
  type ConnectionAnswer,
  type ConnectionList,
  type ConnectionSummary,
  type ConsoleState,
  type ConsoleStateAnswer,
  type EditAnswer,
  type ProblemAnswer,
  type TokenTestAnswer,
  type TokenTestFailure,
  type TokenTestSuccess,
} from './api.js';
import { ConnectionForm } from './connection-form.js';

interface Editing {
  key: string | undefined;
  original: Record<string, unknown>;
  version: string;
}

/** The connections as listed, and the file's version read with them: a change names the version the person saw. */
interface Listed {
  connections: ConnectionSummary[];
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
function ClientAuthCell({ c }: { c: ConnectionSummary }) {
  const keys = c.managedKeys;
  return (
    <>
      {c.clientAuth}
      {c.secretInUse === null ? null : (
        <>
          {' '}
          <span class={c.secretInUse === 'previous' ? 'badge bad' : 'badge'}>{c.secretInUse} secret</span>
        </>
      )}
      {keys === null ? null : (
        <>
          <div>
            JWKS URL for the partner: <code>{`${window.location.origin}${keys.jwksPath}`}</code>
          </div>
          <ul class="keys">
            {keys.keys.map((k) => (
              <li key={k.kid}>
                <code>{k.kid.slice(0, 12)}…</code> {k.state}, {age(k.ageSeconds)} old
              </li>
            ))}
          </ul>
        </>
      )}
    </>
  );
}

const tokenIssued = (b: TokenTestAnswer | ProblemAnswer): b is TokenTestSuccess => 'ok' in b && b.ok;

/** Why a test failed: the authorization server's error, the gateway's reason, or the refusal of the call. */
function testFailure(status: number, b: Partial<TokenTestFailure> & ProblemAnswer): string {
  return `${b.oauthError ?? b.reason ?? b.code ?? status}${b.detail === undefined ? '' : ` — ${b.detail}`}`;
}

/** What the person is told when the gateway refused a deletion. */
function refusalOf(key: string, status: number, problem: ProblemAnswer): string {
  if (problem.code === 'CONNECTION_IN_USE')
    return `Cannot delete ${key}: used by route${problem.routes?.length === 1 ? '' : 's'} ${problem.routes?.join(', ') ?? ''}.`;
  // Someone changed the file since this list was read: what they changed may be why the deletion is wrong.
  if (problem.code === 'CONFIG_CHANGED')
    return `Did not delete ${key}: the config file changed since this list was read. The list now shows the file as it is; delete again if you still mean to.`;
  return problem.detail ?? `Delete failed (${status}).`;
}

export function Connections(props: { state: ConsoleState; editable: boolean; viewer: boolean; refreshState: () => Promise<void> }) {
  const [listed, setListed] = useState<Listed | undefined>(undefined);
  const [query, setQuery] = useState('');
  const [editing, setEditing] = useState<Editing | undefined>(undefined);
  const [message, setMessage] = useState<{ text: string; failed: boolean } | undefined>(undefined);

  const load = async () => {
    const [list, state] = await Promise.all([
      call<ConnectionList>('GET', '/connections'),
      call<ConsoleStateAnswer>('GET', '/console/state'),
    ]);
    if (list.ok && state.ok && 'version' in state.body) setListed({ connections: list.body.connections, version: state.body.version });
  };
  useEffect(() => {
    void load();
  }, []);

  const edit = async (key: string | undefined) => {
    setMessage(undefined);
    if (key === undefined) {
      if (listed !== undefined) setEditing({ key: undefined, original: {}, version: listed.version });
      return;
    }
    const answer = await call<ConnectionAnswer>('GET', `/connections/${encodeURIComponent(key)}`);
    if (!answer.ok) return setMessage({ text: problemsOf(answer)[0]?.message ?? 'Cannot read the connection.', failed: true });
    setEditing({ key, original: answer.body.connection, version: answer.body.version });
  };

  /** Deletes with the version the list was read with, so the server refuses it if the file changed since. */
  const remove = async (key: string, version: string) => {
    if (!window.confirm(`Delete connection ${key} from the config file?`)) return;
    const answer = await call<EditAnswer>('DELETE', `/connections/${encodeURIComponent(key)}?version=${encodeURIComponent(version)}`);
    if (answer.ok) setMessage({ text: `Deleted connection ${key}.`, failed: false });
    else setMessage({ text: refusalOf(key, answer.status, answer.body), failed: true });
    await load();
  };

  const test = async (key: string) => {
    setMessage({ text: `Testing ${key}…`, failed: false });
    // A token endpoint's refusal is a summary too (502); a refusal of the call itself is a problem.
    const answer = await call<TokenTestAnswer, TokenTestFailure | ProblemAnswer>('POST', `/connections/${encodeURIComponent(key)}/test`);
    const b = answer.body;
    if (tokenIssued(b)) {
      setMessage({
        text: `Test of ${key} succeeded: token issued${b.expiresIn === null ? '' : `, expires in ${b.expiresIn} s`} (${b.tookMs} ms).`,
        failed: false,
      });
    } else setMessage({ text: `Test of ${key} failed: ${testFailure(answer.status, b)}`, failed: true });
    await load();
  };

  if (editing !== undefined) {
    return (
      <ConnectionForm
        key={editing.key ?? 'new'}
        connectionKey={editing.key}
        original={editing.original}
        version={editing.version}
        state={props.state}
        taken={(listed?.connections ?? []).map((c) => c.connection)}
        editable={props.editable}
        onDone={(text: string) => {
          setEditing(undefined);
          setMessage({ text, failed: false });
          void load();
          void props.refreshState();
        }}
        onCancel={() => setEditing(undefined)}
      />
    );
  }

  const needle = query.trim().toLowerCase();
  const shown = (listed?.connections ?? []).filter(
    (c) => needle === '' || c.connection.toLowerCase().includes(needle) || c.displayName.toLowerCase().includes(needle),
  );
  return (
    <section aria-labelledby="connections-title">
      <div class="toolbar">
        <h1 id="connections-title" tabindex={-1}>
          Connections
        </h1>
        <input
          type="search"
          aria-label="Search connections"
          placeholder="Search connections"
          value={query}
          onInput={(e) => setQuery(e.currentTarget.value)}
        />
        {props.viewer ? null : (
          <button type="button" disabled={!props.editable || listed === undefined} onClick={() => void edit(undefined)}>
            Add connection
          </button>
        )}
      </div>
      <p role="status" class={message?.failed === true ? 'notice failed' : 'notice'}>
        {message?.text ?? ''}
      </p>
      {listed === undefined ? (
        <p>Loading…</p>
      ) : (
        <>
          <table class="list">
            <thead>
              <tr>
                <th scope="col">Key</th>
                <th scope="col">Display name</th>
                <th scope="col">Client authentication</th>
                <th scope="col">Token status</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {shown.map((c) => (
                <tr key={c.connection}>
                  <th scope="row">{c.connection}</th>
                  <td>{c.displayName}</td>
                  <td>
                    <ClientAuthCell c={c} />
                  </td>
                  <td>
                    <span class={c.tokenCached ? 'badge ok' : 'badge'}>{tokenStatus(c)}</span>
                  </td>
                  <td class="buttons">
                    {props.viewer ? null : (
                      <>
                        <button
                          type="button"
                          class="secondary"
                          aria-describedby={`name-${c.connection}`}
                          onClick={() => void edit(c.connection)}
                        >
                          Edit
                        </button>
                        <button
                          type="button"
                          class="secondary"
                          disabled={!props.editable}
                          onClick={() => void remove(c.connection, listed.version)}
                        >
                          Delete
                        </button>
                      </>
                    )}
                    <button
                      type="button"
                      disabled={props.state.authRequired && !props.state.signedIn}
                      onClick={() => void test(c.connection)}
                    >
                      Test
                    </button>
                    <span hidden id={`name-${c.connection}`}>
                      {c.connection}
                    </span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {shown.length === 0 ? <p>No connection matches.</p> : null}
        </>
      )}
    </section>
  );
}
