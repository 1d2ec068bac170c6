/** Routes: the list, and the editing of a route's auth (type, connection, parameter overrides). */
import { useEffect, useState } from 'preact/hooks';
import {
  call,
  problemsOf,
  type ConnectionList,
  type ConnectionSummary,
  type EditAnswer,
  type RouteAuthChange,
  type RoutesAnswer,
  type RouteSummary,
} from './api.js';
import { Field, FormEnd } from './field.js';
import { ParamRows, paramsOf, rowsOf, type Row } from './rows.js';

function matchText(match: RouteSummary['match']): string {
  return [
    match.pathPrefix ?? '',
    match.methods === undefined ? '' : match.methods.join(' '),
    match.host === undefined ? '' : `host ${match.host}`,
  ]
    .filter((part) => part !== '')
    .join(' · ');
}

function authText(auth: RouteSummary['auth']): string {
  if (auth.type === 'none') return 'None';
  const overrides = Object.entries(auth.params).map(([k, v]) => `${k}=${String(v)}`);
  return `${auth.connection ?? '?'}${overrides.length === 0 ? '' : ` (${overrides.join(', ')})`}`;
}

function RouteForm(props: {
  route: RouteSummary;
  index: number;
  version: string;
  connections: ConnectionSummary[];
  editable: boolean;
  onDone: (text: string) => void;
  onCancel: () => void;
}) {
  const [type, setType] = useState(props.route.auth.type);
  const [connection, setConnection] = useState(props.route.auth.connection ?? '');
  const [rows, setRows] = useState<Row[]>(rowsOf(props.route.auth.params));
  const [errors, setErrors] = useState<Record<string, string | undefined>>({});
  const known = props.connections.map((c) => c.connection);
  const typedConnection =
    type === 'client-connection' && connection !== '' && !known.includes(connection) ? `No connection ${connection}.` : undefined;

  const save = async (event: Event) => {
    event.preventDefault();
    if (typedConnection !== undefined) return;
    const params = type === 'none' ? undefined : paramsOf(rows);
    const body: RouteAuthChange = { type, version: props.version };
    if (type !== 'none') body.connection = connection;
    if (params !== undefined) body.params = params;
    const answer = await call<EditAnswer>('PUT', `/routes/${encodeURIComponent(props.route.name)}/auth`, body);
    if (answer.ok) return props.onDone(`Saved route ${props.route.name}.`);
    const prefix = `routes[${props.index}].auth`;
    const found: Record<string, string> = {};
    for (const problem of problemsOf(answer)) {
      const field =
        problem.path === `${prefix}.connection`
          ? 'connection'
          : problem.path.startsWith(`${prefix}.params`)
            ? 'params'
            : problem.path === `${prefix}.type`
              ? 'type'
              : 'form';
      const text = field === 'form' && problem.path !== '' ? `${problem.path}: ${problem.message}` : problem.message;
      found[field] = found[field] === undefined ? text : `${found[field]} ${text}`;
    }
    setErrors(found);
  };
  const disabled = !props.editable;
  return (
    <form class="panel" onSubmit={(event) => void save(event)} noValidate aria-labelledby="route-form-title">
      <h2 id="route-form-title">Edit route {props.route.name}</h2>
      <div class="grid">
        <Field
          id="route-type"
          label="Auth type"
          value={type}
          error={errors.type}
          disabled={disabled}
          options={[
            ['client-connection', 'Client connection'],
            ['none', 'None'],
          ]}
          onInput={(v) => setType(v)}
        />
        {type === 'none' ? null : (
          <>
            <Field
              id="route-connection"
              label="Client connection"
              value={connection}
              error={errors.connection ?? typedConnection}
              disabled={disabled}
              list="connection-keys"
              hint="Type to search the connections."
              onInput={(v) => {
                setConnection(v);
                setErrors((e) => ({ ...e, connection: undefined }));
              }}
            />
            <datalist id="connection-keys">
              {props.connections.map((c) => (
                <option value={c.connection}>{c.displayName}</option>
              ))}
            </datalist>
          </>
        )}
      </div>
      {type === 'none' ? null : (
        <ParamRows
          legend="Parameter overrides"
          addLabel="Add override"
          rows={rows}
          onChange={setRows}
          error={errors.params}
          disabled={disabled}
        />
      )}
      <FormEnd error={errors.form} save="Save route" disabled={disabled} onCancel={props.onCancel} />
    </form>
  );
}

export function Routes(props: { editable: boolean; viewer: boolean }) {
  const [data, setData] = useState<RoutesAnswer | undefined>(undefined);
  const [connections, setConnections] = useState<ConnectionSummary[]>([]);
  const [editing, setEditing] = useState<number | undefined>(undefined);
  const [message, setMessage] = useState('');
  const load = async () => {
    const [routes, conns] = await Promise.all([call<RoutesAnswer>('GET', '/routes'), call<ConnectionList>('GET', '/connections')]);
    if (routes.ok) setData(routes.body);
    if (conns.ok) setConnections(conns.body.connections);
  };
  useEffect(() => {
    void load();
  }, []);
  const route = editing === undefined ? undefined : data?.routes[editing];
  if (route !== undefined && editing !== undefined && data !== undefined) {
    return (
      <RouteForm
        route={route}
        index={editing}
        version={data.version}
        connections={connections}
        editable={props.editable}
        onDone={(text) => {
          setEditing(undefined);
          setMessage(text);
          void load();
        }}
        onCancel={() => setEditing(undefined)}
      />
    );
  }
  return (
    <section aria-labelledby="routes-title">
      <div class="toolbar">
        <h1 id="routes-title" tabindex={-1}>
          Routes
        </h1>
      </div>
      <p role="status" class="notice">
        {message}
      </p>
      {data === undefined ? (
        <p>Loading…</p>
      ) : (
        <table class="list">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Match</th>
              <th scope="col">Upstream</th>
              <th scope="col">Auth</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {data.routes.map((r, i) => (
              <tr key={r.name}>
                <th scope="row">{r.name}</th>
                <td>
                  <code>{matchText(r.match)}</code>
                </td>
                <td>
                  <code>{r.upstream}</code>
                </td>
                <td>{authText(r.auth)}</td>
                <td class="buttons">
                  {props.viewer ? null : (
                    <button
                      type="button"
                      class="secondary"
                      onClick={() => {
                        setMessage('');
                        setEditing(i);
                      }}
                    >
                      Edit
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
