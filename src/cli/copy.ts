// `cinderblock copy SRC DST [--sparse] [--bps-limit N] [--verify]`: the copy engine from the
// command line (an operator's dd). Progress goes to stderr — a bar when stderr is a terminal,
// else one JSON line per second — and the result to stdout as one JSON line. Ctrl-C aborts the
// copy cleanly (in-flight I/O drained, nothing leaked) and the command fails.
import { copy, type CopyProgress, type CopyResult } from '../native/copy.js';

export interface CopyCommandOptions {
  sparse?: boolean;
  /** Bytes per second: a number, or a string like "100M", "1.5GiB", "500KB" (see parseByteRate). */
  bpsLimit?: number | string;
  verify?: boolean;
}

interface Out {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Where the command writes and what can stop it; tests pass their own. */
export interface CopyCommandIo {
  stdout?: Out;
  stderr?: Out;
  signal?: AbortSignal;
  /** Handle SIGINT/SIGTERM by aborting the copy (default true). */
  handleSignals?: boolean;
  /** Progress refresh: default 200 ms for the bar, 1000 ms for JSON lines. */
  progressIntervalMs?: number;
}

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  kb: 1000,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  mb: 1000 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  gb: 1000 ** 3,
};

/**
 * Bytes from "1048576", "100M", "100MiB" (binary: K, M, G, KiB, MiB, GiB) or "100MB" (decimal:
 * KB, MB, GB); an optional "/s" is accepted. Throws a RangeError naming the accepted forms.
 */
export function parseByteRate(v: number | string): number {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`--bps-limit must be a non-negative integer of bytes per second, got ${v}`);
    return v;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)(?:\/s)?\s*$/i.exec(v);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new RangeError(`--bps-limit ${JSON.stringify(v)} is not a rate: use bytes per second, e.g. 104857600, 100M, 100MiB or 100MB`);
  }
  return Math.round(Number(m[1]) * unit);
}

function human(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function duration(s: number): string {
  if (!Number.isFinite(s)) return '--';
  if (s < 60) return `${Math.round(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** One line of the terminal progress bar, fitted to `columns`. */
export function progressBar(p: CopyProgress, columns = 80): string {
  const frac = p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : 1;
  const rate = p.elapsedMs > 0 ? p.bytesDone / (p.elapsedMs / 1000) : 0;
  const eta = rate > 0 ? (p.bytesTotal - p.bytesDone) / rate : Infinity;
  const right = ` ${(frac * 100).toFixed(1).padStart(5)}% ${human(p.bytesDone)}/${human(p.bytesTotal)} ${human(rate)}/s ETA ${duration(eta)}`;
  const width = Math.max(10, Math.min(50, columns - right.length - 3));
  const filled = Math.round(frac * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]${right}`;
}

/**
 * Copies SRC to DST with the copy engine and reports as described above. Resolves with the
 * result; rejects with the copy's error (CopyError, CopyAbortedError on Ctrl-C).
 */
export async function copyCommand(src: string, dst: string, opts: CopyCommandOptions = {}, io: CopyCommandIo = {}): Promise<CopyResult> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const tty = Boolean(stderr.isTTY);
  const bpsLimit = opts.bpsLimit === undefined ? undefined : parseByteRate(opts.bpsLimit);

  const ac = new AbortController();
  const onExternalAbort = () => ac.abort(io.signal?.reason);
  io.signal?.addEventListener('abort', onExternalAbort, { once: true });
  if (io.signal?.aborted) ac.abort(io.signal.reason);
  const onSignal = (sig: NodeJS.Signals) => ac.abort(new Error(`interrupted by ${sig}`));
  const handleSignals = io.handleSignals ?? true;
  if (handleSignals) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }

  let barShown = false;
  const onProgress = (p: CopyProgress) => {
    if (tty) {
      stderr.write(`\r${progressBar(p, stderr.columns ?? 80)}`);
      barShown = true;
    } else {
      stderr.write(`${JSON.stringify({ type: 'progress', src, dst, ...p, elapsedMs: Math.round(p.elapsedMs) })}\n`);
    }
  };
  try {
    const result = await copy(src, dst, {
      sparse: opts.sparse ?? false,
      verify: opts.verify ?? false,
      ...(bpsLimit ? { bpsLimit } : {}),
      signal: ac.signal,
      onProgress,
      progressIntervalMs: io.progressIntervalMs ?? (tty ? 200 : 1000),
    });
    if (tty) {
      const rate = result.elapsedMs > 0 ? result.bytesCopied / (result.elapsedMs / 1000) : 0;
      stderr.write(
        `${barShown ? '\n' : ''}copied ${human(result.bytesCopied)} in ${(result.elapsedMs / 1000).toFixed(1)}s (${human(rate)}/s) by ${result.method}; ` +
          `wrote ${human(result.bytesWritten)}, skipped ${human(result.bytesSkippedZero + result.bytesSkippedHoles)}` +
          `${result.checksum ? `; ${result.checksum}` : ''}\n`,
      );
    }
    stdout.write(`${JSON.stringify({ type: 'result', src, dst, ...result, elapsedMs: Math.round(result.elapsedMs) })}\n`);
    return result;
  } catch (err) {
    if (tty && barShown) stderr.write('\n');
    throw err;
  } finally {
    io.signal?.removeEventListener('abort', onExternalAbort);
    if (handleSignals) {
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    }
  }
}
