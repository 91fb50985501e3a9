// systemd service notifications (sd_notify(3)) and the watchdog interval (sd_watchdog_enabled(3)),
// for a Type=notify unit with WatchdogSec=.
import { addon } from './addon.js';
import { callSync } from './errors.js';

/**
 * Sends `state` ("READY=1", "STATUS=...", newline-separated assignments) to $NOTIFY_SOCKET.
 * Returns false when NOTIFY_SOCKET is unset (not started by systemd), true when sent; throws a
 * NativeError when it is set but the datagram cannot be sent.
 */
export function sdNotify(state: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const socket = env.NOTIFY_SOCKET;
  if (!socket) return false;
  callSync(() => addon().sdNotify(socket, state), `notifying systemd (${firstLine(state)}) via NOTIFY_SOCKET=${socket}`, {
    ENOENT: 'The notify socket is gone: was the unit stopped or the socket path wrong?',
    ECONNREFUSED: 'Nothing is listening on the notify socket: was the unit stopped?',
    EAFNOSUPPORT: 'NOTIFY_SOCKET must be an absolute path or an abstract name starting with @.',
    EPERM: 'The socket refused us (NotifyAccess= in the unit may not allow this process).',
  });
  return true;
}

/** Start-up finished: systemd marks a Type=notify unit active. */
export function notifyReady(env?: NodeJS.ProcessEnv): boolean {
  return sdNotify('READY=1', env);
}

/** Shutdown has begun. */
export function notifyStopping(env?: NodeJS.ProcessEnv): boolean {
  return sdNotify('STOPPING=1', env);
}

/** One-line status shown by `systemctl status` (newlines would end the assignment, so they become spaces). */
export function notifyStatus(text: string, env?: NodeJS.ProcessEnv): boolean {
  return sdNotify(`STATUS=${text.replace(/[\r\n]+/g, ' ')}`, env);
}

/** Watchdog keep-alive; send at least every watchdogIntervalMs()/2. */
export function notifyWatchdog(env?: NodeJS.ProcessEnv): boolean {
  return sdNotify('WATCHDOG=1', env);
}

/**
 * The watchdog interval systemd expects keep-alives within, in ms, or undefined when the
 * watchdog is off for this process. Like sd_watchdog_enabled(): WATCHDOG_USEC unset -> off;
 * WATCHDOG_PID set to another pid -> off (it was meant for a parent or child); WATCHDOG_USEC not
 * a positive integer below infinity, or WATCHDOG_PID not a pid -> an Error.
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv = process.env, pid: number = process.pid): number | undefined {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined) return undefined;
  if (!/^\d+$/.test(usec) || BigInt(usec) === 0n || BigInt(usec) >= 0xffffffffffffffffn) {
    throw new Error(`WATCHDOG_USEC=${JSON.stringify(usec)} is not a watchdog interval in microseconds (a positive integer).`);
  }
  const pidText = env.WATCHDOG_PID;
  if (pidText !== undefined) {
    if (!/^\d+$/.test(pidText) || Number(pidText) < 1 || Number(pidText) > 0x7fffffff) {
      throw new Error(`WATCHDOG_PID=${JSON.stringify(pidText)} is not a process id.`);
    }
    if (Number(pidText) !== pid) return undefined;
  }
  return Number(BigInt(usec)) / 1000;
}

function firstLine(state: string): string {
  const line = state.split('\n', 1)[0] ?? '';
  return line.length > 60 ? `${line.slice(0, 60)}...` : line;
}
