// An in-process mutex per key: operations on one target run one after another, operations on
// different targets run side by side. A failed operation releases the lock like a successful one.
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Keys with an operation running or waiting (for tests and diagnostics). */
  busyKeys(): string[] {
    return [...this.tails.keys()];
  }
}
