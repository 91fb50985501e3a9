// A periodic task that never overlaps itself and never dies: a failing run is logged and the next
// one runs on schedule, as oslo's periodic tasks do. Timers are unref'd so they never keep a
// stopping process alive.
import type { Logger } from '../log.js';

export class PeriodicTask {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly fn: () => Promise<void>,
    private readonly logger: Logger,
  ) {}

  start(initialDelayMs = this.intervalMs): void {
    this.stopped = false;
    this.schedule(initialDelayMs);
  }

  /** Runs the task now unless a run is already under way; resolves when that run ends. */
  runNow(): Promise<void> {
    if (this.running) return this.running;
    this.running = (async () => {
      const started = Date.now();
      try {
        await this.fn();
      } catch (err) {
        this.logger.error({ err, task: this.name }, `periodic task ${this.name} failed; it runs again in ${this.intervalMs / 1000}s`);
      } finally {
        const took = Date.now() - started;
        if (took > this.intervalMs / 2) {
          this.logger.warn({ task: this.name, took_ms: took }, `periodic task ${this.name} took ${took} ms, more than half its interval`);
        }
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** Stops the schedule and waits for a run under way. Never call it from inside the task. */
  async stop(): Promise<void> {
    this.halt();
    await this.running;
  }

  /**
   * Stops the schedule without waiting: what the task itself calls when it has done its job
   * (awaiting stop() from inside would wait for the very run that is waiting).
   */
  halt(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(delay: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.runNow().then(() => this.schedule(this.intervalMs));
    }, delay);
    this.timer.unref();
  }
}
