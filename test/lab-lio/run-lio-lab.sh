#!/bin/bash
# Host side: boots Debian's kernel under qemu (TCG) with guest-lio.sh as init and prints the
# scenario's CHECK lines. Needs the kernel unpacked by test/lab/setup-lab.sh or
# shared/lab/setup-qemu-lab.sh (KROOT=<dir with boot/ and lib/modules/>). Uses its own
# work dir ($OUT, default /tmp/cinderblock-lio-lab) for the initramfs and the console log.
# Exit 0 when both scenario runs (configfs backend, targetcli backend) printed LIO-SCENARIO PASS.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KROOT=${KROOT:-/var/cache/cinderblock-lab/current/root}
OUT=${OUT:-/tmp/cinderblock-lio-lab}
mkdir -p "$OUT"
KVER=$(ls "$KROOT/lib/modules" | head -1)
SHARED=${CINDERBLOCK_SHARED:-$HERE/../../../shared}
[[ -s $OUT/initrd.gz ]] || "$SHARED/lab/build-initramfs.sh" "$KROOT" "$KVER" "$OUT/initrd.gz" >&2
timeout "${TIMEOUT:-900}" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 2048 -nographic -no-reboot -nic none \
  -kernel "$KROOT/boot/vmlinuz-$KVER" -initrd "$OUT/initrd.gz" \
  -fsdev local,id=hr,path=/,security_model=none,readonly=on,multidevs=remap -device virtio-9p-pci,fsdev=hr,mount_tag=hostroot \
  -fsdev "local,id=km,path=$KROOT/lib/modules/$KVER,security_model=none,readonly=on" -device virtio-9p-pci,fsdev=km,mount_tag=kmods \
  -append "console=ttyS0 panic=-1 quiet loglevel=4 tsc=reliable mitigations=off guestinit=$HERE/guest-lio.sh" </dev/null >"$OUT/console.log" 2>&1 || true
grep -aE '^(GUEST|CHECK|LIO-SCENARIO|cause|initiator view|sessions after)' "$OUT/console.log" || tail -40 "$OUT/console.log"
! grep -q 'LIO-SCENARIO FAIL' "$OUT/console.log" && [[ $(grep -c 'LIO-SCENARIO PASS' "$OUT/console.log") -ge 2 ]]
