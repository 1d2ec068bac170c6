/**
 * The tokengate console: Connections, Routes and Usage Data over the admin API. The YAML file
 * stays the source of truth; every change goes through the API, which writes the file.
 */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { call, mustSignIn, type ConsoleStateAnswer, type SignInWith } from './api.js';
import { Connections } from './connections.js';
import { Routes } from './routes.js';
import { UsageData } from './usage.js';

type View = 'connections' | 'routes' | 'usage';
const VIEWS: [View, string][] = [
  ['connections', 'Connections'],
  ['routes', 'Routes'],
  ['usage', 'Usage Data'],
];

const viewOf = (hash: string): View => VIEWS.find(([view]) => hash === `#/${view}`)?.[0] ?? 'connections';

function SignIn(props: { signInWith: SignInWith; onSignedIn: () => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const submit = async (event: Event) => {
    event.preventDefault();
    const answer = await call('POST', '/session', { key });
    setKey('');
    if (answer.ok) props.onSignedIn();
    else setError(answer.body.detail ?? 'Sign-in failed.');
  };
  // Before sign-in the gateway says only how one may sign in.
  const { key: withKey, sso } = props.signInWith;
  return (
    <main class="signin">
      <section class="panel" aria-labelledby="signin-title">
        <h1 id="signin-title">Sign in to tokengate</h1>
        {sso ? (
          <div class="actions sso">
            <button type="button" onClick={() => location.assign('/auth/login')}>
              Sign in with single sign-on
            </button>
          </div>
        ) : null}
        {withKey ? <KeySignIn value={key} setKey={setKey} error={error} submit={submit} sso={sso} /> : null}
      </section>
    </main>
  );
}

function KeySignIn(props: {
  value: string;
  setKey: (key: string) => void;
  error: string | undefined;
  submit: (event: Event) => Promise<void>;
  sso: boolean;
}) {
  const { value: key, setKey, error, submit } = props;
  return (
    <form onSubmit={(event) => void submit(event)}>
      <p class="hint">
        {props.sso ? 'Or use' : 'Use'} one of the admin keys named under <code>admin.auth.apiKeys</code>.
      </p>
      <div class="field">
        <label for="admin-key">Admin key</label>
        <input
          id="admin-key"
          type="password"
          autocomplete="current-password"
          value={key}
          aria-invalid={error === undefined ? undefined : 'true'}
          aria-describedby={error === undefined ? undefined : 'admin-key-error'}
          onInput={(e) => setKey(e.currentTarget.value)}
        />
        {error === undefined ? null : (
          <p class="error" id="admin-key-error">
            {error}
          </p>
        )}
      </div>
      <div class="actions">
        <button type="submit">Sign in</button>
      </div>
    </form>
  );
}

function App() {
  const [state, setState] = useState<ConsoleStateAnswer | undefined>(undefined);
  const [view, setView] = useState<View>(viewOf(location.hash));
  const refreshState = async () => {
    const answer = await call<ConsoleStateAnswer>('GET', '/console/state');
    if (answer.ok) setState(answer.body);
  };
  useEffect(() => {
    void refreshState();
    const onHash = () => setView(viewOf(location.hash));
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  const firstView = useRef(true);
  useEffect(() => {
    document.title = `${VIEWS.find(([v]) => v === view)?.[1] ?? ''} · tokengate`;
    // After a navigation (not on the first load), take keyboard and screen-reader focus to the new view's heading.
    if (!firstView.current) document.querySelector<HTMLElement>('main h1')?.focus();
    firstView.current = false;
  }, [view]);
  if (state === undefined) return <p class="loading">Loading…</p>;
  if (mustSignIn(state)) return <SignIn signInWith={state.signInWith} onSignedIn={() => void refreshState()} />;
  // A viewer is shown no edit controls at all; the server refuses their changes all the same.
  const viewer = state.user?.role === 'viewer';
  const editable = state.edit && !state.readOnly && state.signedIn && !viewer;
  const signOut = async () => {
    await call('DELETE', '/session');
    await refreshState();
  };
  return (
    <div class="shell">
      <header>
        <span class="brand">tokengate</span>
        <nav aria-label="Console">
          {VIEWS.map(([v, label]) => (
            <a href={`#/${v}`} aria-current={v === view ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        {state.user === null ? null : (
          <p class="who">
            <span class="visually-hidden">Signed in as </span>
            <span class="user-name">{state.user.name}</span>
            <span class="role">{state.user.role}</span>
          </p>
        )}
        {state.authRequired ? (
          <button type="button" class="secondary" onClick={() => void signOut()}>
            Sign out
          </button>
        ) : null}
      </header>
      {editable ? null : (
        <p class="banner" role="note">
          Editing is off:{' '}
          {viewer
            ? 'you are signed in as a viewer: you can read the config and usage data and test connections.'
            : state.readOnly
              ? 'the config file is read-only.'
              : !state.edit
                ? 'set admin.console.edit: true in the config to change connections and routes here.'
                : 'sign in to make changes.'}
        </p>
      )}
      <main>
        {view === 'connections' ? (
          <Connections state={state} editable={editable} viewer={viewer} refreshState={refreshState} />
        ) : view === 'routes' ? (
          <Routes editable={editable} viewer={viewer} />
        ) : (
          <UsageData />
        )}
      </main>
    </div>
  );
}

const root = document.getElementById('app');
if (root !== null) render(<App />, root);
