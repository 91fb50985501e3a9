// watchdogIntervalMs follows sd_watchdog_enabled(3).
import { describe, expect, it } from 'vitest';

import { watchdogIntervalMs } from '../../../src/native/index.js';

describe('watchdogIntervalMs', () => {
  it('is undefined when WATCHDOG_USEC is unset', () => {
    expect(watchdogIntervalMs({})).toBeUndefined();
  });

  it('converts WATCHDOG_USEC to ms', () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' })).toBe(30_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '1500' })).toBe(1.5);
  });

  it('applies only to the process named by WATCHDOG_PID, when set', () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '20000000', WATCHDOG_PID: String(process.pid) })).toBe(20_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '20000000', WATCHDOG_PID: '1' }, 4242)).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '20000000', WATCHDOG_PID: '4242' }, 4242)).toBe(20_000);
  });

  it('rejects values systemd would reject', () => {
    for (const bad of ['', '0', '-5', '1.5', 'abc', '18446744073709551615', ' 10']) {
      expect(() => watchdogIntervalMs({ WATCHDOG_USEC: bad }), bad).toThrow(/WATCHDOG_USEC/);
    }
    expect(() => watchdogIntervalMs({ WATCHDOG_USEC: '1000', WATCHDOG_PID: 'x' })).toThrow(/WATCHDOG_PID/);
    expect(() => watchdogIntervalMs({ WATCHDOG_USEC: '1000', WATCHDOG_PID: '0' })).toThrow(/WATCHDOG_PID/);
  });
});
