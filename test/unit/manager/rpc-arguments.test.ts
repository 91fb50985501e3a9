// The volume RPC methods' argument schemas: every served method has one, a bad argument is
// cinder's InvalidInput naming it, objects and dicts reach the flow as sent, and the connector's
// initiator follows the same iSCSI name rule as the target helper.
import { describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { connectorInitiator } from '../../../drivers/targets/iscsi-common.js';
import { assertInitiatorName } from '../../../src/iscsi/index.js';
import { CinderError } from '../../../src/errors.js';
import type { FlowDeps } from '../../../src/manager/flows/common.js';
import { parseRpcArguments, VOLUME_RPC_ARGUMENTS, type VolumeRpcMethod } from '../../../src/manager/rpc-arguments.js';
import { VolumeManager } from '../../../src/manager/volume-manager.js';
import type { LogLevelControl } from '../../../src/manager/log-levels.js';
import type { VolumeService } from '../../../src/manager/volume-service.js';
import { VersionedObject } from '../../../src/rpc/ovo.js';
import { isIscsiName } from '../../../src/iscsi/iscsi-name.js';

const volume = () => new VersionedObject('Volume', { id: randomUUID(), size: 1, status: 'available' });

function refusal(method: VolumeRpcMethod, kwargs: Record<string, unknown>): { className: string; code: unknown; reason: unknown } | null {
  try {
    parseRpcArguments(method, kwargs);
    return null;
  } catch (err) {
    if (!(err instanceof CinderError)) throw err;
    return { className: err.className, code: err.kwargs.code, reason: err.kwargs.reason };
  }
}

describe('volume RPC argument schemas', () => {
  it('every method the manager serves has a schema, and every schema a method', () => {
    const served = Object.keys(new VolumeManager({} as VolumeService, {} as LogLevelControl, {} as FlowDeps).methods()).sort();
    expect(served).toEqual(Object.keys(VOLUME_RPC_ARGUMENTS).sort());
  });

  it('a bad argument is InvalidInput naming it, worded as the flows worded it', () => {
    const vol = volume();
    expect(refusal('extend_volume', { volume: vol, new_size: 2.5, reservations: [] })).toEqual({
      className: 'InvalidInput',
      code: 400,
      reason: 'new_size must be a positive integer number of GiB, got 2.5',
    });
    expect(refusal('terminate_connection', { volume_id: '../../etc; rm -rf /', connector: null })?.reason).toBe('volume_id must be a UUID, got "../../etc; rm -rf /"');
    expect(refusal('remove_export', {})?.reason).toBe('volume_id must be a UUID, got nothing');
    expect(refusal('delete_volume', { volume: vol, unmanage_only: 'yes' })?.reason).toBe('unmanage_only must be a boolean');
    expect(refusal('extend_volume', { volume: vol, new_size: 2, reservations: [1] })?.reason).toBe('reservations must be a list of strings');
    expect(refusal('manage_existing', { volume: vol, ref: [] })?.reason).toBe('ref must be a dict');
    expect(refusal('create_volume', { volume: vol, filter_properties: 'x' })?.reason).toBe('filter_properties must be a dict');
    expect(refusal('attach_volume', { volume_id: vol.data.id, mode: 'rx' })?.reason).toBe('mode must be rw or ro');
    expect(refusal('attachment_update', { vref: vol, attachment_id: randomUUID(), connector: { initiator: 'iqn.1994-05.com.redhat:a', host: 5 } })?.reason).toBe(
      'connector host must be a string',
    );
    expect(refusal('get_log_levels', { log_request: {} })?.reason).toBe('log_request must be a LogLevel object');
    // an object's field, worded as ovo-schemas words it, under the argument's own name
    const bad = volume();
    bad.data.id = 'volume-$(reboot)';
    expect(refusal('attachment_delete', { attachment_id: randomUUID(), vref: bad })?.reason).toBe('vref.id: must be a UUID');
    // several bad arguments are all named
    expect(refusal('detach_volume', { volume_id: 1, attachment_id: 'x' })?.reason).toBe('volume_id must be a UUID, got 1; attachment_id must be a UUID, got "x"');
  });

  it('defaults as cinder has them, and objects and dicts are the ones sent', () => {
    const vol = volume();
    const filterProperties = { retry: { num_attempts: 1 } };
    const args = parseRpcArguments('create_volume', { volume: vol, request_spec: null, filter_properties: filterProperties });
    expect(args.volume).toBe(vol);
    expect(args.filter_properties).toBe(filterProperties);
    expect(args.request_spec).toBeNull();
    expect(args.allow_reschedule).toBe(true);
    expect(parseRpcArguments('delete_volume', { volume: vol })).toMatchObject({ unmanage_only: false, cascade: false });
    // the destination backend as rpcapi sends it; cinder's manager reads host['host'] unguarded
    const host = { host: 'h@b#b', capabilities: { location_info: 'x' } };
    expect(parseRpcArguments('retype', { volume: vol, new_type_id: randomUUID(), host, migration_policy: null })).toMatchObject({
      host: { host: 'h@b#b', cluster_name: null, capabilities: { location_info: 'x' } },
      migration_policy: 'never',
      reservations: [],
      old_reservations: [],
    });
    expect(parseRpcArguments('migrate_volume', { volume: vol, host: { host: 'h@b#b' } })).toMatchObject({ host: { host: 'h@b#b', cluster_name: null, capabilities: {} }, force_host_copy: false });
    expect(parseRpcArguments('update_migrated_volume', { volume: vol, new_volume: vol })).toMatchObject({ volume_status: null });
    expect(parseRpcArguments('migrate_volume_completion', { volume: vol, new_volume: vol })).toMatchObject({ error: false });
    expect(refusal('migrate_volume', { volume: vol, host: {} })?.reason).toMatch(/host host must be a host name/);
    expect(parseRpcArguments('attach_volume', { volume_id: vol.data.id })).toMatchObject({ instance_uuid: null, host_name: null, mountpoint: null, mode: 'rw' });
    expect(parseRpcArguments('terminate_connection', { volume_id: vol.data.id, connector: null })).toMatchObject({ connector: null, force: false });
  });

  it('a connector without initiator is left to the driver, which words it as cinder does', () => {
    expect(refusal('initialize_connection', { volume: volume(), connector: { host: 'x', ip: '127.0.0.1' } })).toBeNull();
  });

  it('the connector of a connection and the target helper accept and refuse the same initiator names', () => {
    const names: unknown[] = [
      'iqn.1994-05.com.redhat:compute1',
      'iqn.1993-08.org.debian:01:cbbench-compute',
      'iqn.2004-10.com.ubuntu:01:7ec1c0d3f0a2',
      'iqn.2024-01.org.example',
      'eui.02004567A425678D',
      'naa.52004567BA64678D',
      'naa.52004567BA64678D0123456789ABCDEF',
      // refused by both; the first ones were let through by the flows' old, looser rule
      'iqn.1994-05.com.redhat:x/../y',
      'iqn.1994-05.-bad:x',
      'naa.52004567BA64678D01',
      `iqn.1994-05.com.redhat:${'a'.repeat(220)}`,
      'iqn.2004-10.x:a;reboot',
      'iqn.1994-05.com.redhat:x\ninitiator-address ALL',
      'iqn.94-05.com.redhat:x',
      'ALL',
      '',
      null,
      42,
    ];
    for (const name of names) {
      const target = (() => {
        try {
          assertInitiatorName(name);
          return connectorInitiator({ initiator: name as string });
        } catch (err) {
          return err instanceof CinderError ? null : err;
        }
      })();
      const accepted = target !== null;
      expect(accepted, JSON.stringify(name)).toBe(isIscsiName(name));
      const connector = { initiator: name, host: 'compute1' };
      expect(refusal('initialize_connection', { volume: volume(), connector }) === null, `initialize_connection ${JSON.stringify(name)}`).toBe(accepted);
      expect(refusal('attachment_update', { vref: volume(), attachment_id: randomUUID(), connector }) === null, `attachment_update ${JSON.stringify(name)}`).toBe(accepted);
    }
    // and say it in the same words
    expect(refusal('initialize_connection', { volume: volume(), connector: { initiator: 'iqn.2004-10.x:a;reboot' } })?.reason).toBe(
      'connector initiator must be an iSCSI name (iqn.YYYY-MM.domain:name, eui.<16 hex> or naa.<16|32 hex>), got a value containing shell metacharacters',
    );
  });
});

describe('issue-17 method schemas', () => {
  it('a group is a Group object with a UUID id; a group snapshot or source group may be none', () => {
    const g = new VersionedObject('Group', { id: randomUUID() });
    const args = parseRpcArguments('create_group_from_src', { group: g });
    expect(args.group).toBe(g);
    expect(args.group_snapshot).toBeNull();
    expect(args.source_group).toBeNull();
    expect(refusal('create_group', { group: volume() })?.reason).toBe('group must be a Group object with a UUID id, got a Volume');
    expect(refusal('delete_group_snapshot', { group_snapshot: { id: randomUUID() } })?.className).toBe('InvalidInput');
  });

  it('cleanup_request: its filters typed, until read as cinder writes it, a bad one refused', () => {
    const rid = randomUUID();
    const args = parseRpcArguments('do_cleanup', {
      cleanup_request: new VersionedObject('CleanupRequest', { service_id: 3, resource_type: 'Volume', resource_id: rid, until: '2026-12-02T12:00:00Z', is_up: true }),
    });
    expect(args.cleanup_request).toEqual({ service_id: 3, resource_type: 'Volume', resource_id: rid, until: new Date('2026-12-02T12:00:00Z') });
    expect(parseRpcArguments('do_cleanup', { cleanup_request: new VersionedObject('CleanupRequest', {}) }).cleanup_request).toEqual({
      service_id: null,
      resource_type: null,
      resource_id: null,
      until: null,
    });
    expect(refusal('do_cleanup', { cleanup_request: new VersionedObject('CleanupRequest', { until: 'yesterday' }) })?.reason).toBe('cleanup_request until must be a datetime, got "yesterday"');
    expect(refusal('do_cleanup', { cleanup_request: new VersionedObject('CleanupRequest', { service_id: '3' }) })?.reason).toBe('cleanup_request service_id must be an integer');
  });

  it('manageable listings: limit and offset are counts, sort keys and directions lists of strings', () => {
    const args = parseRpcArguments('get_manageable_volumes', { marker: null, limit: 10, offset: 0, sort_keys: ['size'], sort_dirs: ['asc'] });
    expect(args).toEqual({ marker: null, limit: 10, offset: 0, sort_keys: ['size'], sort_dirs: ['asc'], want_objects: false });
    expect(refusal('get_manageable_snapshots', { marker: null, limit: -1, offset: 0, sort_keys: [], sort_dirs: [] })?.reason).toBe('limit must be a non-negative integer, got -1');
  });
});
