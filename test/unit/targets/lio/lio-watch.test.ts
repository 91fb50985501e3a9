// A lost LIO configuration, against the configfs stand-in: the supervisor's probe finds our
// targets gone (and is not fooled by an export being removed right then), the restore brings
// them back with exactly the initiators "the database" names (not the record's), and what no
// volume needs is not reported as a loss at every probe.
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../../../src/log.js';
import { Configfs, type ConfigfsIo } from '../../../../drivers/targets/lio/configfs.js';
import { LioTarget } from '../../../../drivers/targets/lio/lio-target.js';
import { LioWatch } from '../../../../drivers/targets/lio/lio-watch.js';
import { TargetSupervisor } from '../../../../drivers/targets/target-supervisor.js';
import { iscsiTargetDetachFailed } from '../../../../src/errors.js';
import type { ExportedVolume } from '../../../../drivers/targets/target.js';
import { makeStandIn } from './configfs-standin.js';

const base = mkdtempSync('/tmp/cinderblock-lio-watch-');
afterAll(() => rmSync(base, { recursive: true, force: true }));

const A = 'iqn.1994-05.com.redhat:compute-a';
const B = 'iqn.1994-05.com.redhat:compute-b';
const PREFIX = 'iqn.2010-10.org.openstack:';
const IDS = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222'] as const;
const silent = { debug() {}, info() {}, warn() {}, error() {} } as unknown as Logger;

let n = 0;
async function setup(wrap?: (io: ConfigfsIo) => ConfigfsIo) {
  const dir = join(base, `t${++n}`);
  const root = join(dir, 'configfs');
  const si = await makeStandIn(root);
  const io = wrap ? wrap(si.io) : si.io;
  const helper = new LioTarget({
    targetPrefix: PREFIX,
    targetIpAddress: '10.0.0.5',
    targetSecondaryIpAddresses: [],
    targetPort: 3260,
    targetProtocol: 'iscsi',
    volumesDir: join(dir, 'volumes'),
    configfsRoot: root,
    io,
    backend: 'configfs',
  });
  const fs = new Configfs(root, si.io);
  const vol = (id: string, auth: string | null = null): ExportedVolume => ({ id, name: `volume-${id}`, providerLocation: null, providerAuth: auth, backingPath: `/dev/vg/volume-${id}`, multiattach: false });
  /** everything of ours gone from configfs, as after `targetctl clear` */
  const clear = async () => {
    for (const id of IDS) {
      await fs.removeTarget(`${PREFIX}volume-${id}`);
      const bs = await fs.findBackstore(`${PREFIX}volume-${id}`);
      if (bs) await fs.removeBackstore(bs);
    }
  };
  const acls = async (id: string) => (await fs.readTarget(`${PREFIX}volume-${id}`))?.acls.map((a) => a.initiator).sort() ?? null;
  return { helper, fs, vol, clear, acls };
}

describe('LioWatch', () => {
  it('detects a cleared configuration and the restore brings back exactly the attached initiators', async () => {
    const s = await setup();
    const auths: string[] = [];
    for (const id of IDS) {
      const m = await s.helper.createExport(s.vol(id));
      auths.push(m.provider_auth);
      await s.helper.initializeConnection({ ...s.vol(id, m.provider_auth), providerLocation: m.provider_location }, { initiator: A });
      await s.helper.initializeConnection({ ...s.vol(id, m.provider_auth), providerLocation: m.provider_location }, { initiator: B });
    }
    const watch = new LioWatch(s.helper);
    const sup = new TargetSupervisor(watch, { logger: silent, intervalMs: 0 });
    // "the database": volume 0 attached to A only now (B's detach never reached us); volume 1 detached
    const attached: Record<string, string[]> = { [IDS[0]]: [A] };
    const restored: string[] = [];
    sup.setRestore(async () => {
      for (const [i, id] of IDS.entries()) {
        if (!attached[id]) continue;
        await s.helper.ensureExport(s.vol(id, auths[i]!), { initiators: attached[id] });
        restored.push(id);
      }
      return { volumes: IDS.length, restored: restored.length, failed: 0 };
    });
    await sup.ready();
    expect(await watch.probe()).toEqual({ state: 'up' });

    await s.clear();
    expect(await s.acls(IDS[0])).toBeNull();
    expect(await watch.probe()).toEqual({ state: 'lost', detail: '2 of our targets are gone from configfs or no longer serve (TPG disabled)' });
    await sup.checkNow();
    await sup.idle();
    expect(restored).toEqual([IDS[0]]);
    expect(await s.acls(IDS[0])).toEqual([A]);
    expect(await s.acls(IDS[1])).toBeNull();
    // volume 1 needs no export: still missing, but no new loss at every probe
    expect(await watch.probe()).toEqual({ state: 'up' });
    expect(sup.status()).toMatchObject({ up: true, losses: 1 });
  });

  it('a target still listed but whose TPG no longer serves (disabled) is a loss, and the restore enables it again', async () => {
    const s = await setup();
    const m = await s.helper.createExport(s.vol(IDS[0]));
    const v = { ...s.vol(IDS[0], m.provider_auth), providerLocation: m.provider_location };
    await s.helper.initializeConnection(v, { initiator: A });
    const watch = new LioWatch(s.helper);
    const sup = new TargetSupervisor(watch, { logger: silent, intervalMs: 0 });
    sup.setRestore(async () => {
      await s.helper.ensureExport(v, { initiators: [A] });
      return { volumes: 1, restored: 1, failed: 0 };
    });
    await sup.ready();
    expect(await watch.probe()).toEqual({ state: 'up' });
    // what a clear that raced our restore left behind (the lab soak met it): listed, disabled
    await s.fs.setTpgEnabled(`${PREFIX}volume-${IDS[0]}`, false);
    expect(await s.helper.listExports()).toEqual([`${PREFIX}volume-${IDS[0]}`]);
    expect(await watch.probe()).toEqual({ state: 'lost', detail: '1 of our targets are gone from configfs or no longer serve (TPG disabled)' });
    await sup.checkNow();
    await sup.idle();
    expect(await s.fs.tpgEnabled(`${PREFIX}volume-${IDS[0]}`)).toBe(true);
    expect(await s.acls(IDS[0])).toEqual([A]);
    expect(await watch.probe()).toEqual({ state: 'up' });
  });

  it('an export being removed right now is not a loss', async () => {
    let hold: Promise<void> | null = null;
    let reached!: () => void;
    const reachedP = new Promise<void>((r) => (reached = r));
    const s = await setup((io) => ({
      ...io,
      rmdir: async (p: string) => {
        // the backstore goes after the target and before the record: the window a probe must not misread
        if (hold && p.includes('/core/') && p.endsWith(`${PREFIX}volume-${IDS[0]}`)) {
          reached();
          await hold;
        }
        return io.rmdir(p);
      },
    }));
    const m = await s.helper.createExport(s.vol(IDS[0]));
    const watch = new LioWatch(s.helper);
    let release!: () => void;
    hold = new Promise<void>((r) => (release = r));
    const removing = s.helper.removeExport({ ...s.vol(IDS[0], m.provider_auth), providerLocation: m.provider_location });
    await reachedP;
    expect(await s.helper.listExports()).toEqual([]); // gone from configfs, still in the record
    const probing = watch.probe();
    await new Promise((r) => setTimeout(r, 20));
    release();
    await removing;
    expect(await probing).toEqual({ state: 'up' });
    expect(await s.helper.missingExports()).toEqual([]);
  });

  it('an ENOENT anywhere in the cause chain asks for a probe; other errors do not', () => {
    const watch = new LioWatch({ reconcile: async () => ({ mended: [], failed: [] }), missingExports: async () => [] } as never);
    const gone = Object.assign(new Error('rmdir'), { code: 'ENOENT' });
    expect(watch.isDaemonGone(iscsiTargetDetachFailed('v', gone))).toBe(true);
    expect(watch.isDaemonGone(Object.assign(new Error('rmdir'), { code: 'EBUSY' }))).toBe(false);
    expect(watch.isDaemonGone(new Error('plain'))).toBe(false);
  });

});
