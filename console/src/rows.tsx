/** Name/Value rows (additional parameters, parameter overrides) and their conversion to a params object. */

export interface Row {
  id: number;
  name: string;
  value: string;
}

let nextId = 1;

export function rowsOf(params: unknown): Row[] {
  if (typeof params !== 'object' || params === null) return [];
  return Object.entries(params as Record<string, unknown>).map(([name, value]) => ({ id: nextId++, name, value: String(value) }));
}

export function paramsOf(rows: Row[]): Record<string, string> | undefined {
  const filled = rows.filter((row) => row.name.trim() !== '');
  if (filled.length === 0) return undefined;
  return Object.fromEntries(filled.map((row) => [row.name.trim(), row.value]));
}

export function ParamRows(props: {
  legend: string;
  addLabel: string;
  rows: Row[];
  onChange: (rows: Row[]) => void;
  error: string | undefined;
  disabled: boolean;
}) {
  const { rows, onChange } = props;
  const update = (id: number, field: 'name' | 'value', value: string) =>
    onChange(rows.map((row) => (row.id === id ? { ...row, [field]: value } : row)));
  const names = rows.map((row) => row.name.trim()).filter((name) => name !== '');
  const duplicate = names.find((name, i) => names.indexOf(name) !== i);
  const error = props.error ?? (duplicate === undefined ? undefined : `${duplicate} is given twice`);
  return (
    <fieldset class="rows" aria-invalid={error === undefined ? undefined : 'true'}>
      <legend>{props.legend}</legend>
      {rows.length === 0 ? <p class="hint">None.</p> : null}
      {rows.map((row) => (
        <div class="row" key={row.id}>
          <label>
            Name
            <input value={row.name} disabled={props.disabled} onInput={(e) => update(row.id, 'name', e.currentTarget.value)} />
          </label>
          <label>
            Value
            <input value={row.value} disabled={props.disabled} onInput={(e) => update(row.id, 'value', e.currentTarget.value)} />
          </label>
          <button
            type="button"
            class="secondary"
            disabled={props.disabled}
            onClick={() => onChange(rows.filter((r) => r.id !== row.id))}
            aria-label={`Remove ${row.name || 'row'}`}
          >
            Remove
          </button>
        </div>
      ))}
      <button
        type="button"
        class="secondary"
        disabled={props.disabled}
        onClick={() => onChange([...rows, { id: nextId++, name: '', value: '' }])}
      >
        {props.addLabel}
      </button>
      {error === undefined ? null : (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </fieldset>
  );
}
