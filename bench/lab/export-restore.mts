// Lab bench (script mode: bash test/lab/run-lab.sh bench/lab/export-restore.mts): 100 LIO exports on thin LVs, a configfs wipe, then the agent's restart path timed
// (reconcile from its record, then init_host's ensure_export of each volume).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { DriverVolume } from '../../drivers/driver.js';
import { Configfs } from '../../drivers/targets/lio/configfs.js';
import { createDriver } from '../../src/agent/driver-factory.js';
import { createExports, createTargetSide } from '../../src/agent/target-factory.js';
import { configFromText } from '../../src/config/load.js';
import { createLogger, setRootLogger } from '../../src/log.js';
import { sh } from '../../test/lab/lab-io.js';

const N = Number(process.env.PROBE_N ?? 100);
const DISK = (process.env.CBLAB_DISKS ?? '').split(' ')[0]!;
const WORK = '/tmp/export-restore';
rmSync(WORK, { recursive: true, force: true }); mkdirSync(WORK, { recursive: true });
setRootLogger(createLogger({ level: 'error', pretty: false }));
sh(['pvcreate', '-y', DISK]); sh(['vgcreate', 'cinder-volumes', DISK]);
const conf = `[DEFAULT]\nenabled_backends = lvm\nstate_path = ${WORK}\n[lvm]\nvolume_driver = cinder.volume.drivers.lvm.LVMVolumeDriver\nvolume_group = cinder-volumes\nlvm_type = thin\nvolume_backend_name = lvm\ntarget_helper = lioadm\ntarget_protocol = iscsi\ntarget_ip_address = 127.0.0.1\nvolumes_dir = ${WORK}/volumes\n`;
async function backend() {
  const config = configFromText(conf, { hostname: 'cblab-guest', myIp: '127.0.0.1' });
  const b = config.backends[0]!;
  const side = createTargetSide(b, { logger: createLogger({ level: 'error', pretty: false }) })!;
  const d = createDriver(config, b);
  await d.doSetup(); await d.checkForSetupError();
  return { t: side.helper, d, e: createExports(d, side), s: side.supervisor };
}
const res: Record<string, number> = { n: N };
const lap = (k: string, t: number) => { res[k] = Math.round((Date.now() - t) / 10) / 100; console.log(k, res[k]); };
let { t: target, d: driver, e: exports, s: supervisor } = await backend();
const vols: DriverVolume[] = [];
let t = Date.now();
for (let i = 0; i < N; i++) {
  const id = randomUUID();
  const v: DriverVolume = { id, name: `volume-${id}`, size: 1, providerLocation: null, providerAuth: null, multiattach: false };
  await driver.createVolume(v); vols.push(v);
}
lap('create_s', t); t = Date.now();
for (const v of vols) {
  const mu = (await exports.createExport(v))!;
  v.providerLocation = mu.provider_location as string; v.providerAuth = mu.provider_auth as string;
  await exports.initializeConnection(v, { initiator: 'iqn.2024-01.org.example:host-a', ip: '127.0.0.1', host: 'a' } as never);
}
lap('export_and_attach_s', t);
const cf = new Configfs();
t = Date.now();
for (const v of vols) {
  const iqn = `iqn.2010-10.org.openstack:${v.name}`;
  await cf.removeTarget(iqn); await cf.removeBackstore((await cf.findBackstore(iqn))!);
}
lap('wipe_s', t);
t = Date.now();
({ t: target, d: driver, e: exports, s: supervisor } = await backend());
lap('restart_setup_s', t); t = Date.now();
await supervisor.ready(); // the reconcile every export operation waits for first
const listed = await target.listExports();
lap('reconcile_s', t);
res.restored = listed.length;
t = Date.now();
for (const v of vols) await exports.ensureExport(v, ['iqn.2024-01.org.example:host-a']);
lap('init_host_ensure_export_s', t);
const acls = vols.filter((v) => sh(['ls', `/sys/kernel/config/target/iscsi/iqn.2010-10.org.openstack:${v.name}/tpgt_1/acls`]).includes('host-a')).length;
res.with_acl = acls;
console.log(JSON.stringify(res));
writeFileSync(`${process.env.CBLAB_OUT}/export-restore.json`, JSON.stringify(res, null, 1));
process.exit(res.restored === N && acls === N ? 0 : 1);
