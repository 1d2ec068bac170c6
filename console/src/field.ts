/** A labelled input or select whose problem (typed or from the server) is shown under it and announced. */
import { html } from 'htm/preact';

export interface FieldProps {
  id: string;
  label: string;
  value: string;
  error: string | undefined;
  onInput: (value: string) => void;
  disabled?: boolean;
  hint?: string;
  type?: string;
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
    'aria-invalid': props.error === undefined ? undefined : 'true',
    'aria-describedby': described === '' ? undefined : described,
    'aria-required': props.required === true ? 'true' : undefined,
  };
  const read = (e: Event) => props.onInput((e.target as HTMLInputElement | HTMLSelectElement).value);
  return html`<div class="field">
    <label for=${props.id}>${props.label}</label>
    ${
      props.options === undefined
        ? html`<input
            ...${common}
            type=${props.type ?? 'text'}
            list=${props.list}
            value=${props.value}
            onInput=${read}
            autocomplete="off"
          />`
        : html`<select ...${common} value=${props.value} onChange=${read}>
            ${props.options.map(([value, label]) => html`<option value=${value} selected=${value === props.value}>${label}</option>`)}
          </select>`
    }
    ${props.hint === undefined ? null : html`<p class="hint" id=${hintId}>${props.hint}</p>`}
    ${props.error === undefined ? null : html`<p class="error" id=${errorId}>${props.error}</p>`}
  </div>`;
}
