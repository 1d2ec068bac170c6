/** A labelled input or select whose problem (typed or from the server) is shown under it and announced. */

export interface FieldProps {
  id: string;
  label: string;
  value: string;
  error: string | undefined;
  onInput: (value: string) => void;
  disabled?: boolean;
  hint?: string;
  type?: 'text' | 'url';
  /** For a select: [value, label] pairs. */
  options?: [string, string][];
  list?: string;
  required?: boolean;
}

export function Field(props: FieldProps) {
  const errorId = `${props.id}-error`;
  const hintId = `${props.id}-hint`;
  const described = [props.error === undefined ? '' : errorId, props.hint === undefined ? '' : hintId].filter((id) => id !== '').join(' ');
  const common = {
    id: props.id,
    disabled: props.disabled,
    'aria-invalid': props.error === undefined ? undefined : ('true' as const),
    'aria-describedby': described === '' ? undefined : described,
    'aria-required': props.required === true ? ('true' as const) : undefined,
  };
  const read = (e: { currentTarget: HTMLInputElement | HTMLSelectElement }) => props.onInput(e.currentTarget.value);
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      {props.options === undefined ? (
        <input {...common} type={props.type ?? 'text'} list={props.list} value={props.value} onInput={read} autocomplete="off" />
      ) : (
        <select {...common} value={props.value} onChange={read}>
          {props.options.map(([value, label]) => (
            <option value={value} selected={value === props.value}>
              {label}
            </option>
          ))}
        </select>
      )}
      {props.hint === undefined ? null : (
        <p class="hint" id={hintId}>
          {props.hint}
        </p>
      )}
      {props.error === undefined ? null : (
        <p class="error" id={errorId}>
          {props.error}
        </p>
      )}
    </div>
  );
}

export interface FormEndProps {
  /** The problem with the form as a whole (the server's, not tied to one field). */
  error: string | undefined;
  /** The submit button's words: "Save connection", "Save route". */
  save: string;
  disabled: boolean;
  onCancel: () => void;
}

/** The end of an edit form: its problem as a whole, announced, then Save and Cancel. */
export function FormEnd(props: FormEndProps) {
  return (
    <>
      {props.error === undefined ? null : (
        <p class="error" role="alert">
          {props.error}
        </p>
      )}
      <div class="actions">
        <button type="submit" disabled={props.disabled}>
          {props.save}
        </button>
        <button type="button" class="secondary" onClick={props.onCancel}>
          Cancel
        </button>
      </div>
    </>
  );
}
