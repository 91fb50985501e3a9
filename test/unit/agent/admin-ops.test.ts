import { describe, expect, it } from 'vitest';
import { KeyedMutex } from '../../../src/concurrency/keyed-mutex.js';
import { createLogger } from '../../../src/log.js';
import { LogLevelControl } from '../../../src/manager/log-levels.js';
import { adminOps, InFlightCalls, type AdminBackendView } from '../../../src/agent/admin-ops.js';
import type { RunningBackend } from '../../../src/agent/agent.js';

describe('InFlightCalls', () => {
  it('lists the calls running now by method and request id, and forgets them when they end, failed or not', async () => {
    const calls = new InFlightCalls();
    let release!: () => void;
    const wrapped = calls.wrap({
      delete_volume: () => new Promise<void>((r) => (release = r)),
      extend_volume: async () => Promise.reject(new Error('boom')),
    });
    const running = wrapped.delete_volume!({ request_id: 'req-1' }, {});
    expect(calls.list()).toEqual([{ method: 'delete_volume', requestId: 'req-1', startedAt: expect.any(String), seconds: 0 }]);
    await expect(wrapped.extend_volume!({}, {})).rejects.toThrow('boom');
    expect(calls.list()).toHaveLength(1);
    release();
    await running;
    expect(calls.list()).toEqual([]);
  });
});

describe('admin ops: log levels', () => {
  const root = createLogger({ level: 'info', pretty: false, destination: '/dev/null' });
  const view = (name: string): AdminBackendView => ({
    running: { backend: { name, host: `h@${name}` } } as unknown as RunningBackend,
    locks: new KeyedMutex(),
    logger: root.child({ backend: name }),
  });
  const views = [view('lvm'), view('file')];
  const ops = adminOps({ backends: () => views, logLevels: new LogLevelControl(root), version: 't' });

  it('sets one backend by section name or host, leaving the others and the agent alone', async () => {
    expect(await ops['set-log-level']!({ level: 'DEBUG', backend: 'h@lvm' })).toEqual({ lvm: { cinderblock: 'DEBUG' } });
    expect(views[0]!.logger.level).toBe('debug');
    expect(views[1]!.logger.level).toBe('info');
    expect(root.level).toBe('info');
  });

  it('without a backend sets every backend and the agent; an unknown backend names the known ones', async () => {
    expect(await ops['set-log-level']!({ level: 'ERROR' })).toEqual({ lvm: { cinderblock: 'ERROR' }, file: { cinderblock: 'ERROR' } });
    expect(root.level).toBe('error');
    await expect(ops['get-log-levels']!({ backend: 'nfs' })).rejects.toThrow('no backend nfs in this agent; it serves lvm, file');
  });
});
