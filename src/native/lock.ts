// External (inter-process) locks that exclude, and are excluded by, cinder's own:
// oslo.concurrency's lockutils.lock(name, lock_file_prefix='cinder-', external=True, lock_path=P).
//
// What oslo.concurrency 5 / fasteners 0.17 do, and we copy:
//  - file name: name with every '/' replaced by '_', after the prefix; a '-' is put between
//    them unless the prefix already ends with one ('cinder-' + 'vol/1' -> 'cinder-vol_1');
//  - the file is `os.path.join(lock_path, that)`; its directory is made with os.makedirs
//    (mode 0777 less umask) if missing;
//  - it is opened with open(path, 'a') (O_WRONLY|O_CREAT|O_APPEND, 0666 less umask, close-on-exec)
//    and never removed or truncated;
//  - the lock is fcntl.lockf(LOCK_EX|LOCK_NB): a whole-file POSIX write lock, tried every
//    10 ms .. 100 ms until it is free.
// We take the OFD flavour of that lock (see native/lock.cc): it conflicts with lockf's, and unlike
// it belongs to our open file, not to the whole process. Waiters inside this process queue on an
// in-process mutex per lock file first (as lockutils takes its internal semaphore first), so they
// do not all poll the file.
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

import { log, logDropped } from '../log.js';
import { addon } from './addon.js';
import { callSync } from './errors.js';

export interface ExternalLockOptions {
  /** lock_file_prefix; cinder's is 'cinder-' (the default). '' for none. */
  prefix?: string;
  /** Give up after this many ms with a LockTimeoutError; 0 tries once. Default: wait forever. */
  timeoutMs?: number;
  /** Abort waiting: the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Releases the lock (idempotent): unlocks, closes the file and lets the next waiter in. */
export type ReleaseFn = () => Promise<void>;

export class LockTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(readonly lockFile: string, readonly timeoutMs: number) {
    super(
      `Timed out after ${timeoutMs} ms waiting for the external lock ${lockFile}. ` +
        `Another cinderblock or cinder process holds it; \`fuser -v ${lockFile}\` or \`lslocks\` shows which.`,
    );
    this.name = 'LockTimeoutError';
  }
}

/** The lock file oslo.concurrency would use for `name` (see the rules above). */
export function externalLockFile(lockPath: string, name: string, prefix = 'cinder-'): string {
  let fileName = name.replaceAll('/', '_');
  if (prefix) fileName = `${prefix}${prefix.endsWith('-') ? '' : '-'}${fileName}`;
  return path.join(lockPath, fileName);
}

/**
 * Takes the external lock `name` under `lockPath` (cinder's [oslo_concurrency] lock_path).
 * Resolves with the function that releases it. Rejects with LockTimeoutError after
 * opts.timeoutMs, with the signal's reason when opts.signal aborts, or with a NativeError.
 */
export async function acquireExternalLock(lockPath: string, name: string, opts: ExternalLockOptions = {}): Promise<ReleaseFn> {
  const file = externalLockFile(lockPath, name, opts.prefix ?? 'cinder-');
  const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
  const { signal } = opts;
  signal?.throwIfAborted();

  const leaveMutex = await enterMutex(path.resolve(file), deadline, signal, () => new LockTimeoutError(file, opts.timeoutMs ?? 0));
  let fh: FileHandle | undefined;
  try {
    await mkdir(path.dirname(file), { recursive: true }).catch((err: unknown) => {
      throw withLockHint(err, `creating the lock directory ${path.dirname(file)}`);
    });
    // 'a' as in fasteners; libuv opens every file with O_CLOEXEC, so execa'd commands never get it.
    fh = await open(file, 'a').catch((err: unknown) => {
      throw withLockHint(err, `opening the lock file ${file}`);
    });
    const fd = fh.fd;
    for (let delay = 10; ; delay = Math.min(delay + 10, 100)) {
      if (callSync(() => addon().tryLockFile(fd), `locking ${file}`)) break;
      signal?.throwIfAborted();
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new LockTimeoutError(file, opts.timeoutMs ?? 0);
      await sleep(Math.min(delay, remaining), signal);
    }
  } catch (err) {
    // the lock was never taken: the failure to close only leaks a descriptor, and the caller hears
    // of the lock error that matters
    await fh?.close().catch(logDropped(log(), `closing the lock file ${file} after a failed lock`, 'a file descriptor leaks until exit'));
    leaveMutex();
    throw err;
  }

  const held = fh;
  let released: Promise<void> | undefined;
  return () => {
    released ??= (async () => {
      try {
        // Unlock before close: a child forked in between (before its exec closed the fd)
        // would otherwise share our open file and keep the lock.
        callSync(() => addon().unlockFile(held.fd), `unlocking ${file}`);
      } finally {
        await held.close().finally(leaveMutex);
      }
    })();
    return released;
  };
}

/** Runs `fn` holding the external lock `name`, releasing it however `fn` ends. */
export async function withExternalLock<T>(
  lockPath: string,
  name: string,
  fn: () => T | Promise<T>,
  opts?: ExternalLockOptions,
): Promise<T> {
  const release = await acquireExternalLock(lockPath, name, opts);
  try {
    return await fn();
  } finally {
    await release();
  }
}

function withLockHint(err: unknown, attempted: string): unknown {
  if (!(err instanceof Error) || typeof (err as NodeJS.ErrnoException).code !== 'string') return err;
  const code = (err as NodeJS.ErrnoException).code;
  const hint =
    code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
      ? " Check that cinderblock's user can write there (cinder's [oslo_concurrency] lock_path)."
      : '';
  err.message = `${attempted[0]!.toUpperCase()}${attempted.slice(1)} failed: ${err.message}.${hint}`;
  return err;
}

// ---- in-process FIFO mutex per lock file -------------------------------------------------

interface Waiter {
  wake: () => void;
}

interface PathMutex {
  held: boolean;
  queue: Waiter[];
}

const mutexes = new Map<string, PathMutex>();

/** Waits for the in-process mutex of `key`; resolves with the function that leaves it. */
function enterMutex(key: string, deadline: number, signal: AbortSignal | undefined, timeoutError: () => Error): Promise<() => void> {
  let m = mutexes.get(key);
  if (!m) {
    m = { held: false, queue: [] };
    mutexes.set(key, m);
  }
  const mutex = m;
  const leave = once(() => {
    const next = mutex.queue.shift();
    if (next) next.wake();
    else {
      mutex.held = false;
      mutexes.delete(key); // keep the map from growing with every volume name ever locked
    }
  });
  if (!mutex.held) {
    mutex.held = true;
    return Promise.resolve(leave);
  }
  return new Promise((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const waiter: Waiter = {
      wake: () => {
        cleanup();
        resolve(leave); // ownership passes straight to us: `held` stays true
      },
    };
    const giveUp = (err: unknown) => {
      const i = mutex.queue.indexOf(waiter);
      if (i >= 0) mutex.queue.splice(i, 1);
      cleanup();
      reject(err);
    };
    const onAbort = () => giveUp(signal!.reason);
    const cleanup = () => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    mutex.queue.push(waiter);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (deadline !== Infinity) timer = setTimeout(() => giveUp(timeoutError()), Math.max(0, deadline - Date.now()));
  });
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      fn();
    }
  };
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
