// Progress of a long image download or upload in the log: bytes, rate and time left, at most
// once per interval (10 s by default), so a 20 GiB image says how it is doing without flooding.
// Every byte also goes to `count` when given (the agent's cinderblock_image_bytes_total).
import type { Logger } from '../log.js';

export interface TransferProgress {
  /** Count bytes that went by; logs when the interval has passed. */
  add(bytes: number): void;
}

export interface TransferProgressOptions {
  /** between two log lines; default 10 s */
  intervalMs?: number;
  now?: () => number;
  /** told of every byte as it goes (a metric) */
  count?: (bytes: number) => void;
}

export function transferProgress(logger: Logger, what: string, totalBytes: number | null, opts: TransferProgressOptions = {}): TransferProgress {
  const { intervalMs = 10_000, now = Date.now, count } = opts;
  const started = now();
  let done = 0;
  let lastLog = started;
  return {
    add(bytes) {
      done += bytes;
      count?.(bytes);
      const t = now();
      if (t - lastLog < intervalMs) return;
      lastLog = t;
      const rate = done / Math.max((t - started) / 1000, 0.001);
      const left = totalBytes ? Math.max(totalBytes - done, 0) / Math.max(rate, 1) : null;
      logger.info(
        { bytes: done, total_bytes: totalBytes, bytes_per_second: Math.round(rate), eta_seconds: left === null ? null : Math.round(left) },
        `${what}: ${(done / 2 ** 20).toFixed(0)} MiB${totalBytes ? ` of ${(totalBytes / 2 ** 20).toFixed(0)} MiB` : ''} at ${(rate / 2 ** 20).toFixed(1)} MiB/s` +
          (left === null ? '' : `, about ${Math.round(left)} s left`),
      );
    },
  };
}
