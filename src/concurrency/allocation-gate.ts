// A shared/exclusive gate: many operations pass at once, one can close it for itself. A closer
// that waits keeps new passers out, so a stream of shared operations cannot starve it. The LVM
// driver is its user (below); it lives with the other in-process concurrency primitives.
/**
 * Shared for every command that allocates extents, exclusive for a revert from before its
 * merge until the extents the merge frees are held by the wipe LV: LVM hands out freed extents
 * as they are, so no other LV may be given them before they are zeroed. (Within one process:
 * one agent serves a VG.)
 */
export class AllocationGate {
  private readers = 0;
  private writer: Promise<void> | null = null;
  private drained: (() => void) | null = null;

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.writer) await this.writer;
    this.readers++;
    try {
      return await fn();
    } finally {
      this.readers--;
      if (this.readers === 0 && this.drained) this.drained();
    }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.writer) await this.writer;
    let release!: () => void;
    this.writer = new Promise<void>((resolve) => {
      release = resolve;
    });
    try {
      if (this.readers > 0) {
        await new Promise<void>((resolve) => {
          this.drained = resolve;
        });
        this.drained = null;
      }
      return await fn();
    } finally {
      this.writer = null;
      release();
    }
  }
}
