#!/bin/bash
# PID 1 of a lab guest (started by the initramfs through `cblab.init=`). The root file system is
# the host's, read-only over 9p with a tmpfs overlay, so this checkout, node and every host tool
# are here. It brings up what a storage host has (device-mapper, LIO, iSCSI, udev), runs ONE
# vitest suite, writes the results to the disk whose serial is `cblab-results` and powers off.
# Never run this on a real machine: it is an init, and it powers the machine off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
if [[ $$ -ne 1 ]]; then echo "guest-init.sh runs only as PID 1 of a lab guest" >&2; exit 2; fi

mount -t proc proc /proc
mount -t sysfs sys /sys
arg() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" /proc/cmdline; }
say() { echo "cblab-guest: $*"; }
poweroff_now() { sync; echo o >/proc/sysrq-trigger; sleep 60; }
el() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}'; }

T0=$EPOCHREALTIME
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SUITE=$(arg cblab.suite)
KIND=$(arg cblab.kind); KIND=${KIND:-vitest}
HOSTDIR=$(arg cblab.hostdir); [[ $HOSTDIR == none ]] && HOSTDIR=""
TIMEOUT=$(arg cblab.timeout); TIMEOUT=${TIMEOUT:-900}
MODULES=$(arg cblab.modules)
say "up after $(cut -d' ' -f1 /proc/uptime)s, kernel $(uname -r), suite $SUITE, limit ${TIMEOUT}s"

# A suite that hangs is stopped at its limit, so what it printed and its exit code still come
# back (vitest's verbose reporter has already named every test that finished, and so the one that
# hung); the host gives the guest 30 s more. A guest that hangs anyway still powers off, and the
# host's own timeout is the last line of defence.
( sleep "$TIMEOUT"
  echo "cblab-guest: suite exceeded ${TIMEOUT}s, stopping it"
  pkill -TERM -f "node_modules/vitest|--import tsx" ; sleep 8
  pkill -KILL -f "node_modules/vitest|--import tsx" ; sleep 12
  echo "cblab-guest: still here ${TIMEOUT}s + 20s, powering off"; poweroff_now ) &
WATCHDOG=$!

# A checkout under /tmp or /run (CI may clone there) would vanish under the fresh tmpfs: carry it
# across with a bind mount made before and put back after.
KEEP=/mnt/cblab-repo
case $REPO in /tmp/*|/run/*) mkdir -p "$KEEP" && mount --bind "$REPO" "$KEEP" ;; *) KEEP= ;; esac
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
if [[ -n $KEEP ]]; then mkdir -p "$REPO" && mount --bind "$KEEP" "$REPO"; fi
mkdir -p /run/lock /run/lock/iscsi /run/lvm /run/dbus /var/lock /etc/target
mountpoint -q /dev/pts || { mkdir -p /dev/pts; mount -t devpts devpts /dev/pts; }
mountpoint -q /dev/shm || { mkdir -p /dev/shm; mount -t tmpfs tmpfs /dev/shm; }
hostname cblab-guest
ip link set lo up 2>/dev/null

# The kernel's modules live in the lab cache on the host, visible here through the 9p root.
mkdir -p "/lib/modules/$(uname -r)"
[[ -n $MODULES && -d $MODULES ]] && mount --bind "$MODULES" "/lib/modules/$(uname -r)"
t=$EPOCHREALTIME
for m in dm_mod dm_snapshot dm_thin_pool dm_mirror dm_zero dm_multipath dm_round_robin dm_service_time \
         scsi_dh_alua configfs target_core_mod target_core_iblock target_core_file target_core_pscsi \
         iscsi_target_mod iscsi_tcp sd_mod virtio_blk virtio_net loop nvmet nvmet_tcp nvme_fabrics nvme_tcp; do
  modprobe "$m" 2>/dev/null || say "modprobe $m failed"
done
mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
say "modules $(el "$t")s"

t=$EPOCHREALTIME
/lib/systemd/systemd-udevd --daemon >/dev/null 2>&1 && udevadm trigger --action=add && udevadm settle -t 60
say "udev $(el "$t")s"

# qemu user networking: the host answers at 10.0.2.2 (its loopback services), DNS nowhere.
NIC=$(ls /sys/class/net | grep -v '^lo$' | head -1)
if [[ -n $NIC ]]; then
  ip link set "$NIC" up && ip addr add 10.0.2.15/24 dev "$NIC" && ip route add default via 10.0.2.2 && say "network $NIC 10.0.2.15, host 10.0.2.2"
else
  say "no network interface"
fi

# Disks by the serial the host gave them (test/lab/run-lab.sh).
RESULTS=""; PVS=()
for s in /sys/block/vd*/serial; do
  [[ -e $s ]] || continue
  dev=/dev/$(basename "$(dirname "$s")"); serial=$(cat "$s")
  case $serial in
    cblab-results) RESULTS=$dev ;;
    cblab-pv*) PVS+=("$dev") ;;
  esac
done
say "results disk ${RESULTS:-none}, scratch disks ${PVS[*]:-none}"

OUT=/tmp/cblab-out; mkdir -p "$OUT/files"
export CINDERBLOCK_LAB=1 CBLAB_DISKS="${PVS[*]}" CBLAB_HOST_IP=10.0.2.2 CBLAB_OUT="$OUT/files" CI=true NO_COLOR=1 FORCE_COLOR=0 HOME=/root
# What the suite's host hook (run-lab.sh) tells the guest: connection URLs, ports.
if [[ -n $HOSTDIR && -r $HOSTDIR/guest.env ]]; then
  set -a; . "$HOSTDIR/guest.env"; set +a; export CBLAB_HOST_DIR=$HOSTDIR
  say "host services: $(cut -d= -f1 "$HOSTDIR/guest.env" | tr '\n' ' ')"
fi
cd "$REPO" || poweroff_now
t=$EPOCHREALTIME
if [[ $KIND == script ]]; then
  node --import tsx "$SUITE" 2>&1 | tee "$OUT/console.log"
else
  node node_modules/vitest/vitest.mjs run --config test/lab/vitest.lab.config.ts "$SUITE" \
    --reporter=verbose --reporter=json --outputFile.json="$OUT/report.json" 2>&1 | tee "$OUT/console.log"
fi
rc=${PIPESTATUS[0]}
say "$KIND exit $rc after $(el "$t")s"
echo "$rc" >"$OUT/exit-code"
{ echo "guest_total_s=$(el "$T0")"; echo "uptime_s=$(cut -d' ' -f1 /proc/uptime)"; } >"$OUT/timings"
if [[ -n $RESULTS ]]; then
  tar -C "$OUT" -cf "$RESULTS" . && sync && say "results written to $RESULTS"
else
  say "no results disk"
fi
say "CBLAB-DONE rc=$rc"
kill "$WATCHDOG" 2>/dev/null
poweroff_now
