import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  NO_ADDRESS_ACL,
  parseTgtTargetConfig,
  readTgtTargetConfig,
  removeTgtTargetConfig,
  renderTgtTargetConfig,
  tgtConfigPath,
  writeTgtTargetConfig,
  type TgtTargetConfig,
} from '../../../drivers/targets/tgt/tgt-config.js';

const IQN = 'iqn.2010-10.org.openstack:volume-9531a336-8b9f-4724-9d8d-d83f99b240e6';
const base: TgtTargetConfig = {
  iqn: IQN,
  backingStore: '/dev/cinder-volumes/volume-9531a336-8b9f-4724-9d8d-d83f99b240e6',
  driver: 'iscsi',
  chap: { username: '2rX53svf7cbhNF4R2J3E', password: 'MaftGu8RAUnJ27XQ' },
  bsoflags: '',
  writeCache: 'on',
  initiators: [],
};
const dir = mkdtempSync('/tmp/cinderblock-tgtconf-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('persistent tgt target file', () => {
  it('has cinder\'s lines plus an address rule that admits nobody, and one initiator-name per attached host', () => {
    const text = renderTgtTargetConfig({ ...base, bsoflags: 'direct', initiators: ['iqn.1994-05.com.redhat:a', 'iqn.1994-05.com.redhat:b'] });
    const body = text.split('\n').filter((l) => !l.startsWith('#'));
    expect(body).toEqual([
      `<target ${IQN}>`,
      `    backing-store ${base.backingStore}`,
      '    driver iscsi',
      '    incominguser 2rX53svf7cbhNF4R2J3E MaftGu8RAUnJ27XQ',
      '    bsoflags direct',
      '    write-cache on',
      '    params thin_provisioning=1',
      `    initiator-address ${NO_ADDRESS_ACL}`,
      '    initiator-name iqn.1994-05.com.redhat:a',
      '    initiator-name iqn.1994-05.com.redhat:b',
      '</target>',
      '',
    ]);
    expect(text).not.toMatch(/^\s*initiator-address ALL/m);
  });

  it('round-trips', () => {
    const c = { ...base, driver: 'iser' as const, writeCache: 'off' as const, bsoflags: 'sync:direct', initiators: ['iqn.1994-05.com.redhat:a'] };
    expect(parseTgtTargetConfig(renderTgtTargetConfig(c))).toEqual(c);
  });

  it('reads a file cinder\'s tgt helper wrote (VOLUME_CONF with its blank lines)', () => {
    const cinder = `\n<target ${IQN}>\n    backing-store ${base.backingStore}\n    driver iscsi\n    incominguser 2rX53svf7cbhNF4R2J3E MaftGu8RAUnJ27XQ\n    \n    write-cache on\n    params thin_provisioning=1\n</target>\n      `;
    expect(parseTgtTargetConfig(cinder)).toEqual(base);
  });

  it('refuses to render anything that could inject a line', () => {
    expect(() => renderTgtTargetConfig({ ...base, initiators: ['iqn.1994-05.com.redhat:a\ninitiator-address ALL'] })).toThrow(/initiator/);
    expect(() => renderTgtTargetConfig({ ...base, backingStore: '/dev/x\n</target>' })).toThrow(/backing store/);
    expect(() => renderTgtTargetConfig({ ...base, chap: { username: 'u u', password: 'p' } })).toThrow(/CHAP username/);
    expect(() => renderTgtTargetConfig({ ...base, iqn: `${IQN}>` })).toThrow(/IQN/);
    expect(() => parseTgtTargetConfig('nothing here')).toThrow(/no complete <target> block/);
  });

  it('lives at $volumes_dir/<volume name>, never outside it', () => {
    expect(tgtConfigPath('/var/lib/cinder/volumes', 'volume-1')).toBe('/var/lib/cinder/volumes/volume-1');
    expect(() => tgtConfigPath('/var/lib/cinder/volumes', '../../../etc/tgt/targets.conf')).toThrow(/volume name/);
    expect(() => tgtConfigPath('relative', 'volume-1')).toThrow(/volumes_dir/);
  });

  it('is written atomically with mode 0600 and no temp file left; removal is idempotent', async () => {
    const path = tgtConfigPath(join(dir, 'volumes'), 'volume-1');
    await writeTgtTargetConfig(path, base);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(await readTgtTargetConfig(path)).toEqual(base);
    await writeTgtTargetConfig(path, { ...base, initiators: ['iqn.1994-05.com.redhat:a'] });
    expect((await readTgtTargetConfig(path))?.initiators).toEqual(['iqn.1994-05.com.redhat:a']);
    expect(readdirSync(join(dir, 'volumes'))).toEqual(['volume-1']);
    expect(await removeTgtTargetConfig(path)).toBe(true);
    expect(await removeTgtTargetConfig(path)).toBe(false);
    expect(await readTgtTargetConfig(path)).toBeNull();
  });

  it('a garbled file reads as an InvalidInput error', async () => {
    const path = join(dir, 'garbled');
    writeFileSync(path, '<target x');
    await expect(readTgtTargetConfig(path)).rejects.toMatchObject({ className: 'InvalidInput' });
    expect(readFileSync(path, 'utf8')).toBe('<target x');
  });
});
