import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/log.js';
import { LogLevelControl } from '../../../src/manager/log-levels.js';

describe('LogLevelControl (set_log_levels)', () => {
  it('reaches the backend loggers made before the change, which pino would otherwise leave at their old level', () => {
    const root = createLogger({ level: 'info', pretty: false, destination: '/dev/null' });
    const backend = root.child({ backend: 'lvm' });
    const control = new LogLevelControl(root, 'cinderblock', () => [backend]);
    control.set('cinder', 'DEBUG');
    expect(root.level).toBe('debug');
    expect(backend.level).toBe('debug');
    expect(control.get('')).toEqual({ cinderblock: 'DEBUG' });
  });

  it('leaves every level alone for a prefix that names another logger, and refuses an unknown level name', () => {
    const root = createLogger({ level: 'info', pretty: false, destination: '/dev/null' });
    const control = new LogLevelControl(root);
    control.set('oslo_messaging', 'DEBUG');
    expect(root.level).toBe('info');
    expect(() => control.set('', 'LOUD')).toThrow(/unknown log level LOUD/);
    control.set(null, 'warning');
    expect(control.get(null)).toEqual({ cinderblock: 'WARNING' });
  });
});
