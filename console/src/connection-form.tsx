/**
 * The connection form: the fields of a connection in the YAML file, checked as you type where
 * that can be known in the browser, and the server's verdict shown at the field it concerns.
 */
import { useState } from 'preact/hooks';
import { call, problemsOf, type ConsoleState, type EditAnswer } from './api.js';
import { Field, FormEnd, type FieldProps } from './field.js';
import { ParamRows, paramsOf, rowsOf, type Row } from './rows.js';

type Kind = 'clientSecret' | 'privateKeyJwt' | 'tlsClientAuth';
type Json = Record<string, unknown>;

const KEY_PATTERN = /^[A-Za-z0-9_.:-]+$/;
const SECRET_METHODS: [string, string][] = [
  ['client_secret_basic', 'client_secret_basic (HTTP Basic)'],
  ['client_secret_post', 'client_secret_post (form fields)'],
  ['client_secret_jwt', 'client_secret_jwt (HMAC-signed assertion)'],
];
const TLS_METHODS: [string, string][] = [
  ['tls_client_auth', 'tls_client_auth (CA-issued certificate)'],
  ['self_signed_tls_client_auth', 'self_signed_tls_client_auth'],
];
const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
const HMAC = ['HS256', 'HS384', 'HS512'];

interface Model {
  key: string;
  displayName: string;
  clientId: string;
  tokenUrl: string;
  issuer: string;
  kind: Kind;
  secret: string;
  certificate: string;
  method: string;
  keyId: string;
  format: string;
  algorithm: string;
  params: Row[];
}

const str = (value: unknown): string => (typeof value === 'string' ? value : '');
const obj = (value: unknown): Json => (typeof value === 'object' && value !== null ? (value as Json) : {});

function modelOf(key: string, raw: Json): Model {
  const kind: Kind = raw.privateKeyJwt !== undefined ? 'privateKeyJwt' : raw.tlsClientAuth !== undefined ? 'tlsClientAuth' : 'clientSecret';
  const block = obj(raw[kind]);
  return {
    key,
    displayName: str(raw.displayName),
    clientId: str(raw.clientId),
    tokenUrl: str(raw.tokenUrl),
    issuer: str(raw.issuer),
    kind,
    secret: kind === 'tlsClientAuth' ? str(block.key) : str(block.secret),
    certificate: kind === 'tlsClientAuth' ? str(block.certificate) : '',
    method: str(block.method) || (kind === 'tlsClientAuth' ? 'tls_client_auth' : 'client_secret_basic'),
    keyId: str(block.keyId),
    format: str(block.format),
    algorithm: str(block.algorithm),
    params: rowsOf(raw.params),
  };
}

/** The connection as YAML keys: what the form shows replaced, everything else it had kept as it was. */
function bodyOf(model: Model, original: Json): Json {
  const body: Json = { ...original };
  const set = (name: string, value: unknown) => {
    if (value === undefined || value === '') delete body[name];
    else body[name] = value;
  };
  set('displayName', model.displayName.trim());
  set('clientId', model.clientId.trim());
  set('tokenUrl', model.tokenUrl.trim());
  set('issuer', model.issuer.trim());
  const before = obj(original[model.kind]);
  delete body.clientSecret;
  delete body.privateKeyJwt;
  delete body.tlsClientAuth;
  if (model.kind === 'clientSecret' && original.clientAssertion !== undefined && model.secret === '') {
    // A clientAssertion connection (no form fields of its own) keeps its block as it is.
  } else if (model.kind === 'clientSecret') {
    const block: Json = { ...before, secret: model.secret, method: model.method };
    if (model.method === 'client_secret_jwt' && model.algorithm !== '') block.algorithm = model.algorithm;
    else delete block.algorithm;
    body.clientSecret = block;
  } else if (model.kind === 'privateKeyJwt') {
    const block: Json = { ...before, secret: model.secret };
    for (const [name, value] of [
      // privateKeyJwt.managed has no secret: an empty field leaves it out.
      ['secret', model.secret],
      ['keyId', model.keyId],
      ['format', model.format],
      ['algorithm', model.algorithm],
    ] as const) {
      if (value === '') delete block[name];
      else block[name] = value;
    }
    body.privateKeyJwt = block;
  } else {
    body.tlsClientAuth = { ...before, method: model.method, certificate: model.certificate, key: model.secret };
  }
  set('params', paramsOf(model.params));
  return body;
}

/** Which form field a problem's key path (relative to the connection) belongs to. */
function fieldOf(relative: string): keyof Model | 'form' {
  const [head, sub] = relative.split('.');
  if (head === 'displayName' || head === 'clientId' || head === 'tokenUrl' || head === 'issuer' || head === 'params') return head;
  if (head === 'clientSecret' || head === 'privateKeyJwt' || head === 'tlsClientAuth') {
    if (sub === undefined) return 'kind';
    if (sub === 'secret' || (head === 'tlsClientAuth' && sub === 'key')) return 'secret';
    if (sub === 'certificate' && head === 'tlsClientAuth') return 'certificate';
    if (sub === 'method' || sub === 'keyId' || sub === 'format' || sub === 'algorithm') return sub;
  }
  return 'form';
}

/** What can be told before asking the server. */
function typedProblems(model: Model, isNew: boolean, taken: string[]): Partial<Record<keyof Model, string>> {
  const problems: Partial<Record<keyof Model, string>> = {};
  if (isNew) {
    if (model.key === '') problems.key = 'Required.';
    else if (!KEY_PATTERN.test(model.key)) problems.key = 'Use letters, digits, and _ . : - only.';
    else if (taken.includes(model.key)) problems.key = 'A connection with this key exists already.';
  }
  if (model.clientId.trim() === '') problems.clientId = 'Required.';
  for (const field of ['tokenUrl', 'issuer'] as const) {
    const value = model[field].trim();
    // A ${VAR} the file already has is resolved by the gateway, not here.
    if (value !== '' && !value.includes('${') && !/^https?:\/\/[^/]/.test(value)) problems[field] = 'An absolute http: or https: URL.';
  }
  if (model.tokenUrl.trim() === '' && model.issuer.trim() === '')
    problems.tokenUrl = 'Give the Access token URL, or an Issuer to discover it.';
  if (model.tokenUrl.trim() !== '' && model.issuer.trim() !== '') problems.issuer = 'Give the Access token URL or the Issuer, not both.';
  if (model.secret === '') problems.secret = 'Choose a secret.';
  if (model.kind === 'tlsClientAuth' && model.certificate === '') problems.certificate = 'Choose the secret holding the certificate.';
  return problems;
}

export function ConnectionForm(props: {
  connectionKey: string | undefined;
  original: Json;
  version: string;
  state: ConsoleState;
  taken: string[];
  editable: boolean;
  onDone: (message: string) => void;
  onCancel: () => void;
}) {
  const isNew = props.connectionKey === undefined;
  const [model, setModel] = useState<Model>(() => modelOf(props.connectionKey ?? '', props.original));
  const [touched, setTouched] = useState<Set<string>>(new Set());
  const [server, setServer] = useState<Partial<Record<keyof Model | 'form', string>>>({});
  const [saving, setSaving] = useState(false);
  const typed = typedProblems(model, isNew, props.taken);

  const change = <K extends keyof Model>(name: K, value: Model[K]) => {
    setModel((m) => {
      const next = { ...m, [name]: value };
      if (name === 'kind') {
        next.method = value === 'tlsClientAuth' ? 'tls_client_auth' : 'client_secret_basic';
        next.algorithm = '';
      }
      return next;
    });
    setTouched((t) => new Set(t).add(name));
    setServer((s) => ({ ...s, [name]: undefined }));
  };
  const errorOf = (name: keyof Model): string | undefined =>
    server[name] ?? (touched.has(name) || touched.has('submit') ? typed[name] : undefined);

  const save = async (event: Event) => {
    event.preventDefault();
    setTouched((t) => new Set(t).add('submit'));
    if (Object.keys(typed).length > 0) return;
    setSaving(true);
    const answer = await call<EditAnswer>('PUT', `/connections/${encodeURIComponent(model.key)}`, {
      ...bodyOf(model, props.original),
      version: props.version,
    });
    setSaving(false);
    if (answer.ok) {
      props.onDone(`Saved connection ${model.key}.`);
      return;
    }
    const found: Partial<Record<keyof Model | 'form', string>> = {};
    const prefix = `connections.${model.key}`;
    for (const problem of problemsOf(answer)) {
      const relative = problem.path.startsWith(`${prefix}.`)
        ? problem.path.slice(prefix.length + 1)
        : problem.path === prefix
          ? ''
          : undefined;
      const field = relative === undefined ? 'form' : relative === '' ? (isNew ? 'key' : 'form') : fieldOf(relative);
      const text = field === 'form' && problem.path !== '' ? `${problem.path}: ${problem.message}` : problem.message;
      found[field] = found[field] === undefined ? text : `${found[field]} ${text}`;
    }
    setServer(found);
  };

  const secrets: [string, string][] = [['', 'Choose a secret…'], ...props.state.secrets.map((name): [string, string] => [name, name])];
  const disabled = !props.editable || saving;
  const algorithms = model.kind === 'privateKeyJwt' ? ASYMMETRIC : HMAC;
  /** A field of the model; `extra` sets what differs from one field to the next (hint, options, type). */
  const field = (name: Exclude<keyof Model, 'params'>, label: string, extra: Omit<Partial<FieldProps>, 'value' | 'onInput'> = {}) => (
    <Field
      id={`connection-${name}`}
      label={label}
      value={model[name]}
      error={errorOf(name)}
      disabled={disabled}
      onInput={(value) => change(name, value)}
      {...extra}
    />
  );

  return (
    <form class="panel" onSubmit={(event) => void save(event)} noValidate aria-labelledby="connection-form-title">
      <h2 id="connection-form-title">{isNew ? 'Add connection' : `Edit connection ${props.connectionKey ?? ''}`}</h2>
      <div class="grid">
        {field('key', 'Key', { disabled: disabled || !isNew, hint: 'Unique identifier; used in routes and metrics.', required: true })}
        {field('displayName', 'Display name')} {field('clientId', 'Client ID', { required: true })}
        {field('tokenUrl', 'Access token URL', { type: 'url', hint: 'The token endpoint.' })}
        {field('issuer', 'Issuer', { type: 'url', hint: 'Instead of the Access token URL: discover it.' })}
        {field('kind', 'Secret configuration', {
          options: [
            ['clientSecret', 'Client secret'],
            ['privateKeyJwt', 'Private key JWT'],
            ['tlsClientAuth', 'Mutual TLS'],
          ],
        })}
        {field('secret', 'Secret', {
          options: secrets,
          hint:
            model.kind === 'clientSecret'
              ? 'Holds the client secret.'
              : model.kind === 'privateKeyJwt'
                ? 'Holds the private key (PEM or JWK).'
                : "Holds the client certificate's private key.",
        })}
        {model.kind === 'tlsClientAuth'
          ? field('certificate', 'Client certificate', { options: secrets, hint: 'Holds the PEM client certificate.' })
          : null}
        {model.kind === 'privateKeyJwt'
          ? null
          : field('method', 'Client authentication method', { options: model.kind === 'clientSecret' ? SECRET_METHODS : TLS_METHODS })}
        {model.kind === 'privateKeyJwt' ? field('keyId', 'Key ID', { hint: 'The JWS "kid" header; optional.' }) : null}
        {model.kind === 'privateKeyJwt'
          ? field('format', 'Key format', {
              options: [
                ['', 'Detect'],
                ['pem', 'PEM'],
                ['jwk', 'JWK'],
              ],
            })
          : null}
        {model.kind === 'privateKeyJwt' || (model.kind === 'clientSecret' && model.method === 'client_secret_jwt')
          ? field('algorithm', 'Signing algorithm', {
              options: [['', `Default (${algorithms[0]})`], ...algorithms.map((a): [string, string] => [a, a])],
            })
          : null}
      </div>
      <ParamRows
        legend="Additional parameters"
        addLabel="Add parameter"
        rows={model.params}
        disabled={disabled}
        onChange={(rows) => change('params', rows)}
        error={server.params}
      />
      <FormEnd error={server.form} save="Save connection" disabled={disabled} onCancel={props.onCancel} />
    </form>
  );
}
