/** Items that arrive one at a time (events, messages), each awaited by whoever asks next: tests wait on them, never on a clock. */
export class Queue<T> {
  readonly #items: T[] = [];
  readonly #waiting: Array<(item: T) => void> = [];

  push(item: T): void {
    const waiter = this.#waiting.shift();
    if (waiter === undefined) this.#items.push(item);
    else waiter(item);
  }

  next(): Promise<T> {
    const item = this.#items.shift();
    return item === undefined ? new Promise((resolve) => this.#waiting.push(resolve)) : Promise.resolve(item);
  }
}
