// Lab probe for the 90%-sparse copy target (issue 5): how fast can anything write the copy-lv-bench
// thin layout ("1 MiB every 10 MiB" of a 4 GiB thin LV, 410 MiB) into a fresh thin LV? fio writing
// that pattern at depths 1, 8 and 32, fio writing 410 MiB sequentially, and the engine's mapped copy
// of a source with that layout (which reads as well as writes), two rounds; plus the lookup's parts.
//
//   CBLAB_SLOTS=2 CBLAB_DISK_SIZE=24G bash test/lab/run-lab.sh bench/lab/thin-write-probe.mts   # ~90 s of guest
//
// Prints one line per measurement; results are in bench/README.md (LVs in the lab).
import { execFileSync, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { thinDeviceMap } from '../../drivers/lvm/thin-map.js';
import { copy } from '../../src/native/index.js';

const MiB = 1024 * 1024;
const SIZE = 4096 * MiB;
const VG = 'probe';
const disk = (process.env.CBLAB_DISKS ?? '').split(' ')[0]!;
const run = (c: string, ...a: string[]) => execFileSync(c, a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const lv = (n: string) => `/dev/${VG}/${n}`;
function fresh(n: string): string {
  spawnSync('lvremove', ['-f', `${VG}/${n}`], { stdio: 'ignore' });
  run('lvcreate', '-T', `${VG}/pool`, '-V', '4096m', '-n', n, '--yes');
  run('udevadm', 'settle');
  return lv(n);
}
run('pvcreate', '-ff', '-y', disk);
run('vgcreate', VG, disk);
run('lvcreate', '-L', '16g', '--chunksize', '64k', '-T', `${VG}/pool`, '--yes');
const src = fresh('src');
const fd = openSync(src, 'w');
const chunk = Buffer.alloc(MiB);
randomFillSync(chunk);
for (let off = 0; off < SIZE; off += 10 * MiB) writeSync(fd, chunk, 0, MiB, off);
fsyncSync(fd);
closeSync(fd);
const map = (await thinDeviceMap(src))!;
console.log(`map: ${map.extents.length} extents, ${map.mappedBytes / MiB} MiB; lookup ${JSON.stringify(map.lookupMs)}`);
for (let round = 0; round < 2; round++) {
  for (const depth of [1, 8, 32]) {
    const dst = fresh('fio');
    const t = performance.now();
    run('fio', '--name=w', `--filename=${dst}`, '--rw=write:9m', '--bs=1m', `--iodepth=${depth}`, '--ioengine=io_uring', '--direct=1', `--size=${SIZE}`, '--end_fsync=1');
    const s = (performance.now() - t) / 1000;
    console.log(`round ${round} fio write 1m every 10m depth ${depth}: ${s.toFixed(2)} s (${(410 / s).toFixed(0)} MiB/s)`);
  }
  {
    const dst = fresh('fio4');
    const t = performance.now();
    run('fio', '--name=w', `--filename=${dst}`, '--rw=write', '--bs=4m', '--iodepth=16', '--ioengine=io_uring', '--direct=1', '--size=410m', '--end_fsync=1');
    const s = (performance.now() - t) / 1000;
    console.log(`round ${round} fio write 410 MiB sequential 4m x16: ${s.toFixed(2)} s (${(410 / s).toFixed(0)} MiB/s)`);
  }
  {
    const dst = fresh('eng');
    const t = performance.now();
    const r = await copy(src, dst, { length: SIZE, destinationIsZeroed: true, sync: true, sourceExtents: map.extents });
    const s = (performance.now() - t) / 1000;
    console.log(`round ${round} engine mapped copy: ${s.toFixed(2)} s (${(410 / s).toFixed(0)} MiB/s) block ${r.blockSize} depth ${r.depth} ${r.ioBackend}`);
  }
  {
    const t = performance.now();
    const m = await thinDeviceMap(src);
    console.log(`round ${round} lookup ${((performance.now() - t) / 1000).toFixed(3)} s ${JSON.stringify(m!.lookupMs)}`);
  }
}
run('vgremove', '-f', VG);
