import { describe, expect, it } from 'vitest';
import { formatStatus, serviceState, statusExitCode, type BackendReport, type StatusReport } from '../../../src/cli/status.js';

const now = new Date('2026-12-02T12:00:00Z');
const row = (updatedAt: Date | null, extra: Partial<{ created_at: Date | null; disabled: boolean }> = {}) => ({
  updated_at: updatedAt,
  created_at: extra.created_at ?? null,
  disabled: extra.disabled ?? false,
  disabled_reason: null,
  report_count: 7,
  rpc_current_version: '3.18',
  object_current_version: '1.39',
});

describe('serviceState: cinder-api\'s up/down rule', () => {
  it('is up while the last heartbeat is within service_down_time, down after', () => {
    expect(serviceState(row(new Date(now.getTime() - 60_000)), now, 60).state).toBe('up');
    const down = serviceState(row(new Date(now.getTime() - 61_000)), now, 60);
    expect(down).toMatchObject({ state: 'down', heartbeatAgeSeconds: 61, reportCount: 7, rpcVersion: '3.18', objectVersion: '1.39' });
  });

  it('reads created_at for a row never heartbeat, and says missing without a row', () => {
    expect(serviceState(row(null, { created_at: new Date(now.getTime() - 5000) }), now, 60).state).toBe('up');
    expect(serviceState(undefined, now, 60).state).toBe('missing');
  });
});

function backend(extra: Partial<BackendReport> = {}): BackendReport {
  return {
    name: 'lvm',
    host: 'storage1@lvm',
    service: serviceState(row(now), now, 60),
    volumes: { available: 2, 'in-use': 1 },
    allocated: { count: 3, gigabytes: 30 },
    attachments: { attached: 1 },
    workers: [],
    live: null,
    target: { helper: 'tgtadm', state: 'up', detail: 'tgtd answers' },
    exports: [{ volumeName: 'volume-1', iqn: 'iqn.x:volume-1', live: true }],
    ...extra,
  };
}

function report(agentRunning: boolean, dbReachable: boolean, backends: BackendReport[]): StatusReport {
  return {
    agent: { running: agentRunning, socket: '/var/lib/cinder/cinderblock/admin.sock', detail: agentRunning ? 'pid 1, up 5 s' : 'not running' },
    database: dbReachable ? { reachable: true, url: 'mysql+pymysql://cinder:***@db/cinder' } : { reachable: false, url: null, error: 'refused' },
    serviceDownTime: 60,
    externalLocks: ['cinder-volume-1-delete_volume'],
    backends,
  };
}

const live = {
  name: 'lvm',
  host: 'storage1@lvm',
  driverInitialized: true,
  serviceId: 1,
  rpc: { inFlight: 2, held: 0, queues: [], calls: [{ method: 'delete_volume', requestId: 'req-9', startedAt: '2026-12-02T11:59:00.000Z', seconds: 60 }] },
  locks: ['volume-1-delete_volume'],
  target: { up: true, armed: true, restoring: false, losses: 1 },
  pools: [{ pool_name: 'lvm', total_capacity_gb: 100, free_capacity_gb: 40, provisioned_capacity_gb: 60, max_over_subscription_ratio: '20.0', total_volumes: 3, backend_state: 'up' }],
  exports: [{ volumeName: 'volume-1', iqn: 'iqn.x:volume-1', live: true }],
  logLevels: { cinderblock: 'INFO' },
};

describe('status exit code', () => {
  it('0 with the agent running and every backend up; 1 with a backend down, a driver not initialized or the agent stopped; 3 with nothing reachable', () => {
    expect(statusExitCode(report(true, true, [backend({ live })]))).toBe(0);
    expect(statusExitCode(report(true, true, [backend({ live, service: serviceState(row(new Date(0)), now, 60) })]))).toBe(1);
    expect(statusExitCode(report(true, true, [backend({ live: { ...live, driverInitialized: false } })]))).toBe(1);
    expect(statusExitCode(report(false, true, [backend()]))).toBe(1);
    expect(statusExitCode(report(false, false, [backend({ service: null })]))).toBe(3);
    // the database down but the agent answering: the service state is unknown, which is a problem
    expect(statusExitCode(report(true, false, [backend({ live, service: null })]))).toBe(1);
  });
});

describe('status as text', () => {
  it('shows the service row, the pool, exports, RPC in flight and locks', () => {
    const text = formatStatus(report(true, true, [backend({ live, target: null })]));
    expect(text).toMatch(/lvm\s+storage1@lvm\s+up\s+no\s+2026-12-02T12:00:00Z\s+0s\s+3\.18\s+1\.39/);
    expect(text).toMatch(/lvm\s+lvm\s+100\s+40\s+60\s+20\.0\s+3\s+up/);
    expect(text).toContain('volumes:       available=2 in-use=1');
    expect(text).toContain('allocated:     30 GiB in 3 volume(s) (database)');
    expect(text).toContain('exports:       1 (0 recorded but not live)');
    expect(text).toContain(`rpc in flight: 2 running, 0 held back\n${' '.repeat(19)}delete_volume req-9 for 60s\n`);
    expect(text).toContain('locks held:    volume-1-delete_volume');
    expect(text).toContain('file locks held:   cinder-volume-1-delete_volume');
    expect(text).toContain('target daemon: up, 1 loss(es) since start');
  });

  it('says the agent is down and where the target state came from', () => {
    const text = formatStatus(report(false, true, [backend({ service: serviceState(row(new Date(now.getTime() - 120_000)), now, 60) })]));
    expect(text).toContain('agent:             not running');
    expect(text).toMatch(/storage1@lvm\s+DOWN/);
    expect(text).toContain('agent not running: no live capacity');
    expect(text).toContain('target daemon: up (tgtd answers; probed directly)');
    expect(text).toContain('exports:       1 (0 recorded but not live; read without the agent)');
  });
});
