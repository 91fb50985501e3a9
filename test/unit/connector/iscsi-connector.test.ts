// The connector's flow against a fake iscsiadm/multipath (a runner that answers from a small model
// of sessions) and an in-memory sysfs. Real behaviour is checked in the lab
// (test/lab/lio-iscsi.lab.test.ts); this pins the order of steps, the argv and the secrecy.
import { describe, expect, it } from 'vitest';
import type { CommandRunner } from '../../../src/exec/run-command.js';
import { IscsiConnector, parseConnectionInfo, type ConnectorIo } from '../../../src/connector/iscsi-connector.js';
import { createLogger } from '../../../src/log.js';

const IQN = 'iqn.2010-10.org.openstack:volume-9531a336-8b9f-4724-9d8d-d83f99b240e6';
const SECRET = 'MaftGu8RAUnJ27XQ';
const info = {
  driver_volume_type: 'iscsi',
  data: {
    target_discovered: false, target_portal: '10.0.0.5:3260', target_iqn: IQN, target_lun: 0,
    target_portals: ['10.0.0.5:3260', '10.0.1.5:3260'], target_iqns: [IQN, IQN], target_luns: [0, 0],
    volume_id: '9531a336-8b9f-4724-9d8d-d83f99b240e6', auth_method: 'CHAP', auth_username: '2rX53svf7cbhNF4R2J3E', auth_password: SECRET,
    encrypted: false, qos_specs: null, access_mode: 'rw',
  },
};

describe('parseConnectionInfo', () => {
  it('reads both shapes (initialize_connection and attachment flattened)', () => {
    const a = parseConnectionInfo(info);
    const b = parseConnectionInfo({ ...info.data, driver_volume_type: 'iscsi', attachment_id: 'x' });
    expect(a).toEqual(b);
    expect(a.paths).toEqual([
      { iqn: IQN, portal: '10.0.0.5:3260', lun: 0 },
      { iqn: IQN, portal: '10.0.1.5:3260', lun: 0 },
    ]);
    expect(a.chap).toEqual({ username: '2rX53svf7cbhNF4R2J3E', password: SECRET });
  });

  it('single portal, no CHAP, LUN as a string', () => {
    const p = parseConnectionInfo({ driver_volume_type: 'iscsi', data: { target_portal: '[fd00::5]:3260', target_iqn: IQN, target_lun: '1' } });
    expect(p).toEqual({ volumeId: null, paths: [{ iqn: IQN, portal: '[fd00::5]:3260', lun: 1 }], chap: null });
  });

  it('says what is wrong, never the secret', () => {
    expect(() => parseConnectionInfo({ driver_volume_type: 'rbd', data: {} })).toThrow(/iscsi only/);
    expect(() => parseConnectionInfo({ data: { target_iqn: IQN } })).toThrow(/no target_iqn\/target_portal/);
    expect(() => parseConnectionInfo({ data: { ...info.data, target_iqns: [IQN] } })).toThrow(/same length/);
    expect(() => parseConnectionInfo({ data: { ...info.data, target_luns: [0, -1] } })).toThrow(/target_luns\[1\]/);
    expect(() => parseConnectionInfo({ data: { ...info.data, target_iqns: [IQN, 'x; reboot'] } })).toThrow(/iSCSI name/);
    expect(() => parseConnectionInfo({ data: { ...info.data, auth_method: 'KRB5' } })).toThrow(/CHAP or none/);
    let msg = '';
    try {
      parseConnectionInfo({ data: { ...info.data, auth_password: `${SECRET} x` } });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toMatch(/CHAP password/);
    expect(msg).not.toContain(SECRET);
  });
});

/** A host with iscsiadm, multipathd and sysfs modelled just enough for the connector's flow. */
function fakeHost(opts: { multipathd?: boolean; refuse?: boolean; manualScan?: boolean } = {}) {
  const calls: string[][] = [];
  const files = new Map<string, string>();
  const dirs = new Map<string, string[]>();
  const sessions: { sid: number; portal: string; disk: string; hctl: string }[] = [];
  let nextSid = 1;
  const disks = ['sdb', 'sdc'];
  const p3 = () =>
    `Target: ${IQN} (non-flash)\n` +
    sessions
      .map(
        (s) =>
          `\tCurrent Portal: ${s.portal},1\n\t\tIface Name: default\n\t\tSID: ${s.sid}\n\t\tiSCSI Connection State: LOGGED IN\n\t\tiSCSI Session State: LOGGED_IN\n` +
          `\t\tHost Number: ${s.sid + 1}\tState: running\n` +
          (s.disk ? `\t\tscsi${s.sid + 1} Channel 00 Id 0 Lun: 0\n\t\t\tAttached scsi disk ${s.disk}\t\tState: running\n` : ''),
      )
      .join('');
  const makeMap = () => {
    if (!opts.multipathd || sessions.length < 2) return;
    for (const s of sessions) dirs.set(`/sys/block/${s.disk}/holders`, ['dm-0']);
    dirs.set('/sys/block/dm-0/slaves', sessions.map((s) => s.disk));
    files.set('/sys/block/dm-0/dm/uuid', 'mpath-36001405aaaa\n');
    files.set('/sys/block/dm-0/dm/name', '36001405aaaa\n');
    files.set('/dev/mapper/36001405aaaa', '');
    files.set('/sys/block/dm-0/size', '2097152\n');
  };
  const runner: CommandRunner = async (argv) => {
    calls.push([...argv]);
    const ok = (stdout = '') => ({ stdout, stderr: '', exitCode: 0 });
    if (argv[0] === 'iscsiadm' && argv[2] === 'session' && argv[3] === '-P') {
      return sessions.length ? ok(p3()) : { stdout: '', stderr: 'iscsiadm: No active sessions.', exitCode: 21 };
    }
    if (argv[0] === 'iscsiadm' && argv.includes('--login')) {
      if (opts.refuse) return { stdout: '', stderr: 'iscsiadm: initiator reported error (24 - iSCSI login failed due to authorization failure)', exitCode: 24 };
      const portal = argv[argv.indexOf('-p') + 1]!;
      const disk = disks[sessions.length]!;
      const sid = nextSid++;
      // with node.session.scan = manual the login makes no disk: the targeted scan does
      const manual = opts.manualScan && calls.some((a) => a.includes('node.session.scan'));
      sessions.push({ sid, portal, disk: manual ? '' : disk, hctl: `${sid + 1}:0:0:0` });
      files.set(`/dev/${disk}`, '');
      files.set(`/sys/block/${disk}/size`, '2097152\n');
      makeMap();
      return ok();
    }
    if (argv[0] === 'iscsiadm' && argv.includes('--logout')) {
      const portal = argv[argv.indexOf('-p') + 1]!;
      const i = sessions.findIndex((s) => s.portal === portal);
      if (i < 0) return { stdout: '', stderr: 'iscsiadm: No matching sessions found', exitCode: 21 };
      sessions.splice(i, 1);
      return ok();
    }
    if (argv[0] === 'multipath' && argv[1] === '-f') {
      for (const d of disks) dirs.delete(`/sys/block/${d}/holders`);
      return ok();
    }
    if (argv[0] === 'multipathd' && argv[1] === 'resize') {
      files.set('/sys/block/dm-0/size', files.get('/sys/block/sdb/size')!);
      return ok('ok\n');
    }
    if (argv[0] === 'iscsiadm' && argv.includes('--rescan')) {
      for (const d of disks) if (files.has(`/sys/block/${d}/size`)) files.set(`/sys/block/${d}/size`, '4194304\n');
      return ok();
    }
    return ok();
  };
  const written: [string, string][] = [];
  const io: ConnectorIo = {
    readFile: async (p) => {
      const v = files.get(p);
      if (v === undefined) throw Object.assign(new Error(`ENOENT ${p}`), { code: 'ENOENT' });
      return v;
    },
    writeFile: async (p, d) => {
      written.push([p, d]);
      const scan = /^\/sys\/class\/scsi_host\/host(\d+)\/scan$/.exec(p);
      const s = scan ? sessions.find((x) => x.sid + 1 === Number(scan[1])) : undefined;
      if (s && d === '- - 0') s.disk = disks[s.sid - 1]!;
    },
    readdir: async (p) => {
      const v = dirs.get(p);
      if (!v) throw Object.assign(new Error(`ENOENT ${p}`), { code: 'ENOENT' });
      return v;
    },
    exists: async (p) => files.has(p),
  };
  return { calls, runner, io, written, sessions };
}

function logSink() {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', pretty: false, destination: '/dev/null' });
  // capture through a child whose write goes to our array
  const capture = new Proxy(logger, {
    get(target, prop, recv) {
      if (['debug', 'info', 'warn', 'error'].includes(String(prop))) {
        return (...args: unknown[]) => lines.push(JSON.stringify(args));
      }
      return Reflect.get(target, prop, recv);
    },
  });
  return { lines, logger: capture };
}

describe('IscsiConnector', () => {
  it('multipath: node record, CHAP, login on each portal, then the map', async () => {
    const h = fakeHost({ multipathd: true });
    const sink = logSink();
    const c = new IscsiConnector({ runner: h.runner, io: h.io, sleep: async () => undefined, logger: sink.logger, pollMs: 1 });
    const d = await c.connectVolume(info);
    expect(d).toEqual({ path: '/dev/mapper/36001405aaaa', multipath: true, mapName: '36001405aaaa', dmDevice: 'dm-0', devices: ['sdb', 'sdc'], sessions: [1, 2] });
    const iscsi = h.calls.filter((a) => a[0] === 'iscsiadm' && a[2] === 'node').map((a) => a.slice(5).join(' '));
    expect(iscsi.slice(0, 6)).toEqual([
      '-p 10.0.0.5:3260 --interface default --op new',
      '-p 10.0.0.5:3260 --interface default --op update -n node.startup -v manual',
      '-p 10.0.0.5:3260 --interface default --op update -n node.session.auth.authmethod -v CHAP',
      '-p 10.0.0.5:3260 --interface default --op update -n node.session.auth.username -v 2rX53svf7cbhNF4R2J3E',
      `-p 10.0.0.5:3260 --interface default --op update -n node.session.auth.password -v ${SECRET}`,
      '-p 10.0.0.5:3260 --interface default --op update -n node.session.scan -v manual',
    ]);
    expect(sink.lines.join('\n')).not.toContain(SECRET);
  });

  it('manual scan: the login scans nothing, the connector scans exactly its LUN on the session (os-brick does the same)', async () => {
    const h = fakeHost({ manualScan: true });
    const c = new IscsiConnector({ runner: h.runner, io: h.io, sleep: async () => undefined, pollMs: 1, logger: logSink().logger });
    const d = await c.connectVolume(info, { multipath: false });
    expect(d.path).toBe('/dev/sdb');
    expect(h.written).toEqual([['/sys/class/scsi_host/host2/scan', '- - 0']]);
    // no whole-session rescan was needed
    expect(h.calls.some((a) => a.includes('--rescan'))).toBe(false);
  });

  it('single path when asked: the first portal only, the disk itself', async () => {
    const h = fakeHost();
    const c = new IscsiConnector({ runner: h.runner, io: h.io, sleep: async () => undefined, pollMs: 1 });
    const d = await c.connectVolume(info, { multipath: false });
    expect(d.path).toBe('/dev/sdb');
    expect(h.sessions.map((s) => s.portal)).toEqual(['10.0.0.5:3260']);
  });

  it('refused login: clear error, node record removed, no secret in the message', async () => {
    const h = fakeHost({ refuse: true });
    const c = new IscsiConnector({ runner: h.runner, io: h.io, sleep: async () => undefined, pollMs: 1, logger: logSink().logger });
    const err = await c.connectVolume(info).catch((e: Error) => e);
    expect(String(err)).toMatch(/authorization failure/);
    expect(String(err)).toMatch(/initiatorname\.iscsi/);
    expect(String(err)).not.toContain(SECRET);
    expect(h.calls.filter((a) => a.includes('delete')).map((a) => a[6])).toEqual(['10.0.0.5:3260', '10.0.1.5:3260']);
  });

  it('extend: rescan every session and path, resize the map, return its size', async () => {
    const h = fakeHost({ multipathd: true });
    const c = new IscsiConnector({ runner: h.runner, io: h.io, sleep: async () => undefined, pollMs: 1, logger: logSink().logger });
    await c.connectVolume(info);
    h.calls.length = 0;
    expect(await c.extendVolume(info)).toBe(4194304 * 512);
    expect(h.calls.filter((a) => a.includes('--rescan')).map((a) => a[4])).toEqual(['1', '2']);
    expect(h.written).toEqual([
      ['/sys/class/scsi_device/2:0:0:0/device/rescan', '1'],
      ['/sys/class/scsi_device/3:0:0:0/device/rescan', '1'],
    ]);
    expect(h.calls.at(-1)).toEqual(['multipathd', 'resize', 'map', '36001405aaaa']);
  });

  it('disconnect: flush the map, delete the disks, log out, delete the records', async () => {
    const h = fakeHost({ multipathd: true });
    const c = new IscsiConnector({ runner: h.runner, io: h.io, sleep: async () => undefined, pollMs: 1, logger: logSink().logger });
    await c.connectVolume(info);
    h.calls.length = 0;
    await c.disconnectVolume(info);
    const steps = h.calls.filter((a) => !(a[2] === 'session')).map((a) => (a[0] === 'iscsiadm' ? `iscsiadm ${a[6]} ${a.slice(9).join(' ')}` : a.slice(0, 2).join(' ')));
    expect(steps).toEqual([
      'multipath -f',
      'blockdev --flushbufs',
      'blockdev --flushbufs',
      'iscsiadm 10.0.0.5:3260 --logout',
      'iscsiadm 10.0.1.5:3260 --logout',
      'iscsiadm 10.0.0.5:3260 --op delete',
      'iscsiadm 10.0.1.5:3260 --op delete',
    ]);
    expect(h.written.map(([p]) => p)).toEqual(['/sys/class/scsi_device/2:0:0:0/device/delete', '/sys/class/scsi_device/3:0:0:0/device/delete']);
    expect(h.sessions).toEqual([]);
  });
});
