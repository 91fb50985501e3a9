import { describe, expect, it } from 'vitest';
import { buildConnectionInfo } from '../../../drivers/targets/connection-info.js';
import { connectorInitiator, iscsiConnectionInfo, validateIscsiConnector, volumeIqn, type IscsiTargetOptions } from '../../../drivers/targets/iscsi-common.js';
import { loadFixture } from '../../helpers/fixtures.js';

const MANAGER_KEYS = ['encrypted', 'qos_specs', 'access_mode', 'cacheable', 'discard'];

function captured(file: string) {
  const f = loadFixture(file);
  const volume = (f.request.oslo_message as any).args.volume['versioned_object.data'];
  const connector = (f.request.oslo_message as any).args.connector;
  const result = (f.replies[0]!.oslo_message as any).result;
  return { volume, connector, result };
}

describe('connection_info (targets/iscsi.py _get_iscsi_properties)', () => {
  it('gives exactly cinder\'s reply once the manager adds its own keys (captured e2e fixture)', () => {
    const { volume, connector, result } = captured('volume.initialize_connection.e2e.json');
    const d = result.data;
    const opts: IscsiTargetOptions = { targetPrefix: 'iqn.2010-10.org.openstack:', targetIpAddress: '127.0.0.1', targetSecondaryIpAddresses: [], targetPort: 3260, targetProtocol: 'iscsi' };
    const iqn = volumeIqn(opts.targetPrefix, `volume-${volume.id}`);
    expect(iqn).toBe(d.target_iqn);
    const info = iscsiConnectionInfo(
      opts,
      { id: volume.id, providerAuth: `CHAP ${d.auth_username} ${d.auth_password}` },
      `127.0.0.1:3260,1 ${iqn} 1`,
      connector,
    );
    for (const k of MANAGER_KEYS) expect(info.data).not.toHaveProperty(k);
    expect({ ...info, data: { ...info.data, encrypted: false, qos_specs: null, access_mode: 'rw', cacheable: false } }).toEqual(result);
    // and the key order cinder produces
    expect(Object.keys(info.data)).toEqual(['target_discovered', 'target_portal', 'target_iqn', 'target_lun', 'volume_id', 'auth_method', 'auth_username', 'auth_password']);
  });

  it('matches the peer client fixture too', () => {
    const { volume, result } = captured('volume.initialize_connection.peer_client.json');
    const d = result.data;
    const info = buildConnectionInfo('iscsi', { id: volume.id, location: `127.0.0.1:3260,1 ${d.target_iqn} 1`, providerAuth: `CHAP ${d.auth_username} ${d.auth_password}` }, false);
    expect({ ...info.data, encrypted: false, qos_specs: null, access_mode: 'rw', cacheable: false }).toEqual(d);
  });

  it('multipath connector: adds the lists even with one portal', () => {
    const info = buildConnectionInfo('iscsi', { id: 'v', location: '10.0.0.1:3260,4 iqn.2010-10.org.openstack:volume-v 1', providerAuth: null }, true);
    expect(info.data).toEqual({
      target_discovered: false,
      target_portals: ['10.0.0.1:3260'],
      target_iqns: ['iqn.2010-10.org.openstack:volume-v'],
      target_luns: [1],
      target_portal: '10.0.0.1:3260',
      target_iqn: 'iqn.2010-10.org.openstack:volume-v',
      target_lun: 1,
      volume_id: 'v',
    });
  });

  it('secondary IPs: lists for every portal, the first also as target_portal', () => {
    const info = buildConnectionInfo(
      'iser',
      { id: 'v', location: '10.0.0.1:3260;[fd00::2]:3260,4 iqn.2010-10.org.openstack:volume-v 1', providerAuth: 'CHAP 2rX53svf7cbhNF4R2J3E MaftGu8RAUnJ27XQ' },
      false,
    );
    expect(info.driver_volume_type).toBe('iser');
    expect(info.data).toMatchObject({
      target_portals: ['10.0.0.1:3260', '[fd00::2]:3260'],
      target_iqns: ['iqn.2010-10.org.openstack:volume-v', 'iqn.2010-10.org.openstack:volume-v'],
      target_luns: [1, 1],
      target_portal: '10.0.0.1:3260',
      auth_method: 'CHAP',
    });
  });

  it('no provider_auth: no auth keys; discovered location: target_discovered true', () => {
    const info = buildConnectionInfo('iscsi', { id: 'v', location: '10.0.0.1:3260,4 iqn.2010-10.org.openstack:volume-v 1', providerAuth: null, discovered: true }, false);
    expect(info.data.target_discovered).toBe(true);
    expect(info.data).not.toHaveProperty('auth_method');
  });

  it('refuses a non-iSCSI target_protocol', () => {
    expect(() => buildConnectionInfo('nvmet_tcp', { id: 'v', location: '1.2.3.4:1,1 iqn.2010-10.org.openstack:v 1', providerAuth: null }, false)).toThrow(/iSCSI/);
  });
});

describe('validate_connector', () => {
  it('throws cinder\'s InvalidConnectorException without an initiator (the captured failure)', () => {
    const f = loadFixture('volume.initialize_connection.failure.json');
    const connector = (f.request.oslo_message as any).args.connector;
    const failure = JSON.parse((f.replies[0]!.oslo_message as any).failure);
    let err: any;
    try {
      validateIscsiConnector(connector);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ className: 'InvalidConnectorException', kwargs: { missing: 'initiator' } });
    // the manager wraps it into InvalidInput("Invalid input received: <message>")
    expect(failure.message).toBe(`Invalid input received: ${err.message}`);
  });

  it('accepts a connector with an initiator; connectorInitiator checks its syntax', () => {
    expect(() => validateIscsiConnector({ initiator: 'iqn.1994-05.com.redhat:compute1' })).not.toThrow();
    expect(connectorInitiator({ initiator: 'iqn.1994-05.com.redhat:compute1' })).toBe('iqn.1994-05.com.redhat:compute1');
    expect(() => connectorInitiator({ initiator: 'iqn.1994-05.com.redhat:c1; reboot' })).toThrow(/Invalid input/);
    expect(() => connectorInitiator({ initiator: null as unknown as string })).toThrow(/Connector doesn't have required information: initiator/);
  });
});
