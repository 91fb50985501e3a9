// A cinderblock agent to kill: lvm.lab.test.ts runs this in a child process and SIGKILLs it in
// the middle of a thick revert, after the merge freed the snapshot's exception store and before
// the wipe LV holds it (the window the LVM tags on the origin are for; drivers/lvm/README.md).
//
//   node --import tsx test/lab/revert-child.mts <vg> <volume json> <snapshot json>
//
// The driver runs as in the agent except for its LVM runner: this one stops before the
// `lvcreate ... -n _cinderblock-wipe-*` (prints PAUSED and never returns), so the kill lands in
// that window every time instead of racing a few seconds of lvchange. Nothing in the driver
// knows about it: the runner is the driver's ordinary injection point.
import type { DriverSnapshot, DriverVolume } from '../../drivers/driver.js';
import { LvmVolumeDriver } from '../../drivers/lvm/lvm-driver.js';
import { lvmCommandRunner, type LvmRunner } from '../../drivers/lvm/lvm-runner.js';
import { createLogger } from '../../src/log.js';

const [vg, volumeJson, snapshotJson] = process.argv.slice(2);
if (!vg || !volumeJson || !snapshotJson) throw new Error('usage: revert-child.mts <vg> <volume json> <snapshot json>');

const real = lvmCommandRunner({ lvmConfFile: 'None', suppressFdWarnings: true });
const runner: LvmRunner = async (argv, opts) => {
  if (argv[0] === 'lvcreate' && argv.some((a) => a.startsWith('_cinderblock-wipe-'))) {
    process.stdout.write('PAUSED\n');
    setInterval(() => undefined, 1 << 30); // stay alive until the SIGKILL
    await new Promise<never>(() => undefined);
  }
  return real(argv, opts);
};

const driver = new LvmVolumeDriver({
  volumeGroup: vg, lvmType: 'default', backendName: 'lvm', hostname: 'cblab-guest', volumeClear: 'zero', volumeClearSize: 0,
  runner, logger: createLogger({ level: 'warn', pretty: false, destination: 2 }),
});
await driver.doSetup();
await driver.checkForSetupError();
await driver.revertToSnapshot(JSON.parse(volumeJson) as DriverVolume, JSON.parse(snapshotJson) as DriverSnapshot);
process.stdout.write('DONE\n');
