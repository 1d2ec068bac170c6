import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * A resolved secret value. It prints as `[redacted]` in logs, JSON and util.inspect, so passing
 * one to a logger by mistake leaks nothing; `reveal()` is the only way to read it.
 */
export class Secret {
  readonly #value: string;
  readonly name: string;

  constructor(name: string, value: string) {
    this.name = name;
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}
