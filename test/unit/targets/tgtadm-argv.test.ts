import { describe, expect, it } from 'vitest';
import { redactArgv } from '../../../src/exec/redact-argv.js';
import {
  bindAccountArgv,
  bindInitiatorAddressArgv,
  bindInitiatorNameArgv,
  classifyTgtadmFailure,
  deleteAccountArgv,
  deleteConnectionArgv,
  deleteLunArgv,
  deleteTargetArgv,
  newAccountArgv,
  newLunArgv,
  newPortalArgv,
  newTargetArgv,
  showAccountsArgv,
  showConnectionsArgv,
  showPortalsArgv,
  showSystemArgv,
  showTargetParamsArgv,
  showTargetsArgv,
  setTargetStateArgv,
  Tgtadm,
  TgtadmError,
  tgtAdminDeleteArgv,
  tgtAdminShowArgv,
  tgtAdminUpdateArgv,
  unbindAccountArgv,
  unbindInitiatorAddressArgv,
  unbindInitiatorNameArgv,
  updateLunParamsArgv,
  updateTargetParamArgv,
  WRITE_CACHE_OFF_MODE_PAGE,
} from '../../../drivers/targets/tgt/tgtadm.js';

const IQN = 'iqn.2010-10.org.openstack:volume-9531a336-8b9f-4724-9d8d-d83f99b240e6';
const INI = 'iqn.1994-05.com.redhat:compute1';
const D = {};
const C = { controlPort: 13260 };

describe('tgtadm argv builders', () => {
  it('show', () => {
    expect(showSystemArgv(D)).toEqual(['tgtadm', '--op', 'show', '--mode', 'sys']);
    expect(showSystemArgv(C)).toEqual(['tgtadm', '-C', '13260', '--op', 'show', '--mode', 'sys']);
    expect(showTargetsArgv(D)).toEqual(['tgtadm', '--lld', 'iscsi', '--op', 'show', '--mode', 'target']);
    expect(showTargetParamsArgv(C, 3)).toEqual(['tgtadm', '-C', '13260', '--lld', 'iscsi', '--op', 'show', '--mode', 'target', '--tid', '3']);
    expect(showAccountsArgv({ lld: 'iser' })).toEqual(['tgtadm', '--lld', 'iser', '--op', 'show', '--mode', 'account']);
    expect(showPortalsArgv(D)).toEqual(['tgtadm', '--lld', 'iscsi', '--op', 'show', '--mode', 'portal']);
    expect(showConnectionsArgv(D, 2)).toEqual(['tgtadm', '--lld', 'iscsi', '--op', 'show', '--mode', 'conn', '--tid', '2']);
  });

  it('targets', () => {
    expect(newTargetArgv(D, 1, IQN)).toEqual(['tgtadm', '--lld', 'iscsi', '--op', 'new', '--mode', 'target', '--tid', '1', '-T', IQN]);
    expect(deleteTargetArgv(D, 1)).toEqual(['tgtadm', '--lld', 'iscsi', '--op', 'delete', '--mode', 'target', '--tid', '1']);
    expect(deleteTargetArgv(C, 7, { force: true })).toEqual(['tgtadm', '-C', '13260', '--lld', 'iscsi', '--op', 'delete', '--force', '--mode', 'target', '--tid', '7']);
    expect(setTargetStateArgv(D, 4, 'offline')).toEqual(['tgtadm', '--lld', 'iscsi', '--op', 'update', '--mode', 'target', '--tid', '4', '--name', 'state', '--value', 'offline']);
    expect(() => setTargetStateArgv(D, 4, 'gone' as never)).toThrow(/state/);
    expect(updateTargetParamArgv(D, 1, 'MaxRecvDataSegmentLength', '65536')).toEqual([
      'tgtadm', '--lld', 'iscsi', '--op', 'update', '--mode', 'target', '--tid', '1', '--name', 'MaxRecvDataSegmentLength', '--value', '65536',
    ]);
  });

  it('logical units: LUN 1 on the backing store, bsoflags, parameters', () => {
    expect(newLunArgv(D, 1, 1, '/dev/cinder-volumes/volume-1')).toEqual([
      'tgtadm', '--lld', 'iscsi', '--op', 'new', '--mode', 'logicalunit', '--tid', '1', '--lun', '1', '-b', '/dev/cinder-volumes/volume-1',
    ]);
    expect(newLunArgv(D, 1, 1, '/dev/vg/lv', { bsoflags: 'sync:direct', bstype: 'aio' }).slice(-4)).toEqual(['--bstype', 'aio', '--bsoflags', 'sync:direct']);
    expect(newLunArgv(D, 1, 1, '/dev/vg/lv', { bsoflags: '' })).not.toContain('--bsoflags');
    expect(deleteLunArgv(D, 1, 1)).toEqual(['tgtadm', '--lld', 'iscsi', '--op', 'delete', '--mode', 'logicalunit', '--tid', '1', '--lun', '1']);
    expect(updateLunParamsArgv(D, 1, 1, [['thin_provisioning', '1']])).toEqual([
      'tgtadm', '--lld', 'iscsi', '--op', 'update', '--mode', 'logicalunit', '--tid', '1', '--lun', '1', '--params', 'thin_provisioning=1',
    ]);
    expect(updateLunParamsArgv(D, 2, 1, [['online', '0'], ['path', '/dev/vg/lv']]).slice(-2)).toEqual(['--params', 'online=0,path=/dev/vg/lv']);
    expect(updateLunParamsArgv(D, 2, 1, [['mode_page', WRITE_CACHE_OFF_MODE_PAGE]]).at(-1)).toBe(`mode_page=${WRITE_CACHE_OFF_MODE_PAGE}`);
  });

  it('accounts: incoming by default, --outgoing is a bare flag', () => {
    expect(newAccountArgv(D, 'user2345', 'pass2345')).toEqual(['tgtadm', '--lld', 'iscsi', '--op', 'new', '--mode', 'account', '--user', 'user2345', '--password', 'pass2345']);
    expect(deleteAccountArgv(D, 'user2345')).toEqual(['tgtadm', '--lld', 'iscsi', '--op', 'delete', '--mode', 'account', '--user', 'user2345']);
    expect(bindAccountArgv(D, 3, 'user2345')).toEqual(['tgtadm', '--lld', 'iscsi', '--op', 'bind', '--mode', 'account', '--tid', '3', '--user', 'user2345']);
    expect(bindAccountArgv(D, 3, 'u', { outgoing: true }).at(-1)).toBe('--outgoing');
    expect(unbindAccountArgv(D, 3, 'user2345')).toEqual(['tgtadm', '--lld', 'iscsi', '--op', 'unbind', '--mode', 'account', '--tid', '3', '--user', 'user2345']);
  });

  it('ACLs by initiator name and address', () => {
    expect(bindInitiatorNameArgv(D, 1, INI)).toEqual(['tgtadm', '--lld', 'iscsi', '--op', 'bind', '--mode', 'target', '--tid', '1', '--initiator-name', INI]);
    expect(unbindInitiatorNameArgv(D, 1, INI)).toEqual(['tgtadm', '--lld', 'iscsi', '--op', 'unbind', '--mode', 'target', '--tid', '1', '--initiator-name', INI]);
    expect(bindInitiatorAddressArgv(D, 1, '10.0.0.0/24').slice(-2)).toEqual(['--initiator-address', '10.0.0.0/24']);
    expect(unbindInitiatorAddressArgv(D, 1, 'ALL').slice(-2)).toEqual(['--initiator-address', 'ALL']);
    expect(() => bindInitiatorAddressArgv(D, 1, 'example.org')).toThrow(/initiator address/);
  });

  it('connections and portals', () => {
    expect(deleteConnectionArgv(D, 2, 8, 0)).toEqual(['tgtadm', '--lld', 'iscsi', '--op', 'delete', '--mode', 'conn', '--tid', '2', '--sid', '8', '--cid', '0']);
    expect(newPortalArgv(D, { host: '::1', port: 3260 })).toEqual(['tgtadm', '--lld', 'iscsi', '--op', 'new', '--mode', 'portal', '--param', 'portal=[::1]:3260']);
    expect(() => newPortalArgv(D, { host: 'storage.example', port: 3260 })).toThrow();
  });

  it('tgt-admin (cinder\'s config-file path)', () => {
    expect(tgtAdminUpdateArgv(D, IQN)).toEqual(['tgt-admin', '--update', IQN]);
    expect(tgtAdminUpdateArgv(C, IQN, { force: true, confFile: '/etc/tgt/targets.conf' })).toEqual(['tgt-admin', '-C', '13260', '-c', '/etc/tgt/targets.conf', '--update', IQN, '-f']);
    expect(tgtAdminDeleteArgv(D, IQN, { force: true })).toEqual(['tgt-admin', '--delete', IQN, '-f']);
    expect(tgtAdminShowArgv(D)).toEqual(['tgt-admin', '--show']);
  });

  it('validates every value before it reaches argv', () => {
    expect(() => newTargetArgv(D, 1, `${IQN}; reboot`)).toThrow(/target IQN/);
    expect(() => newTargetArgv(D, 0, IQN)).toThrow(/tid must be an integer >= 1/);
    expect(() => newTargetArgv(D, 1.5, IQN)).toThrow(/tid/);
    expect(() => bindInitiatorNameArgv(D, 1, 'iqn.1994-05.com.redhat:x\ny')).toThrow(/initiator/);
    expect(() => bindInitiatorNameArgv(D, 1, '--initiator-address=ALL')).toThrow(/initiator/);
    expect(() => newLunArgv(D, 1, 1, 'relative/path')).toThrow(/backing store/);
    expect(() => newLunArgv(D, 1, 1, '/dev/vg/lv\n')).toThrow(/backing store/);
    expect(() => newLunArgv(D, 1, 1, '/dev/vg/../../etc/shadow')).toThrow(/backing store/);
    expect(() => newLunArgv(D, 1, 1, '/dev/vg/lv', { bsoflags: 'direct;id' })).toThrow(/iscsi_target_flags/);
    expect(() => newAccountArgv(D, 'user', 'pass word')).toThrow(/CHAP password/);
    expect(() => newAccountArgv(D, '--op', 'x')).toThrow(/CHAP username/);
    expect(() => updateLunParamsArgv(D, 1, 1, [['online', '0,path=/etc/shadow']])).toThrow(/unsafe value/);
    expect(() => updateLunParamsArgv(D, 1, 1, [['path', '/x,online=1']])).toThrow(/backing store/);
    expect(() => updateLunParamsArgv(D, 1, 1, [['Bad-Name', '1']])).toThrow(/parameter name/);
    expect(() => updateLunParamsArgv(D, 1, 1, [])).toThrow();
    expect(() => showSystemArgv({ controlPort: -1 })).toThrow(/control port/);
    expect(() => showTargetsArgv({ lld: 'fc' as never })).toThrow(/lld/);
    expect(() => unbindInitiatorAddressArgv(D, 1, 'ALL; id')).toThrow(/unexpected characters/);
  });
});

describe('tgtadm failures', () => {
  it('are told apart by stderr (tgtadm exits 22 for all of them)', () => {
    const k = (stderr: string, exitCode = 22) => classifyTgtadmFailure({ stderr, exitCode });
    expect(k('tgtadm: failed to send request hdr to tgt daemon, Transport endpoint is not connected', 107)).toBe('no-daemon');
    expect(k('', 107)).toBe('no-daemon');
    expect(k("tgtadm: can't find the target")).toBe('target-not-found');
    expect(k("tgtadm: can't find the logical unit")).toBe('lun-not-found');
    expect(k("tgtadm: can't find the account")).toBe('account-not-found');
    expect(k('tgtadm: this access control rule does not exist')).toBe('acl-not-found');
    expect(k('tgtadm: this target already exists')).toBe('target-exists');
    expect(k('tgtadm: this logical unit number already exists')).toBe('lun-exists');
    expect(k('tgtadm: this account already exists')).toBe('account-exists');
    expect(k('tgtadm: this access control rule already exists')).toBe('acl-exists');
    expect(k('tgtadm: this target is still active')).toBe('target-busy');
    expect(k('tgtadm: this logical unit is still active')).toBe('lun-busy');
    expect(k('tgtadm: invalid request')).toBe('invalid-request');
    expect(k('something else')).toBe('unknown');
  });

  it('never carry the CHAP secret or user name in their message', async () => {
    const adm = new Tgtadm(async () => ({ stdout: '', stderr: 'tgtadm: this account already exists\n', exitCode: 22 }));
    const err = await adm.newAccount('SecretUser2345', 'SecretPass2345').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TgtadmError);
    expect((err as TgtadmError).kind).toBe('account-exists');
    expect((err as Error).message).not.toMatch(/SecretUser2345|SecretPass2345/);
    expect((err as TgtadmError).argv).toEqual(['tgtadm', '--lld', 'iscsi', '--op', 'new', '--mode', 'account', '--user', '***', '--password', '***']);
  });

  it('redactArgv masks --user/--password values and key=value forms', () => {
    expect(redactArgv(['tgt-admin', '--mode', 'account', '--user=u', '--password=p', '-u', 'x', 'incominguser=a'])).toEqual([
      'tgt-admin', '--mode', 'account', '--user=***', '--password=***', '-u', '***', 'incominguser=***',
    ]);
  });

  it('runTolerating turns listed failures into false and rethrows the rest', async () => {
    let stderr = 'tgtadm: this access control rule already exists';
    const adm = new Tgtadm(async () => ({ stdout: '', stderr, exitCode: 22 }));
    expect(await adm.runTolerating(bindInitiatorNameArgv(D, 1, INI), 'acl-exists')).toBe(false);
    stderr = "tgtadm: can't find the target";
    await expect(adm.runTolerating(bindInitiatorNameArgv(D, 1, INI), 'acl-exists')).rejects.toMatchObject({ kind: 'target-not-found' });
  });

  it('isRunning is false when no tgtd answers', async () => {
    expect(await new Tgtadm(async () => ({ stdout: '', stderr: "tgtadm: can't connect to tgt daemon, No such file or directory", exitCode: 107 })).isRunning()).toBe(false);
    expect(await new Tgtadm(async () => ({ stdout: 'System:\n    State: ready\n', stderr: '', exitCode: 0 })).isRunning()).toBe(true);
  });
});
