#!/bin/bash
# Runs INSIDE the qemu guest as init (root = host root over 9p + tmpfs overlay, see
# /work/shared/lab/README.md): loads LIO, mounts configfs, starts udev and iscsid, makes a loop
# block device, then runs lio-scenario.ts and powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HERE=$(cd "$(dirname "$0")" && pwd)
echo "GUEST-UP uptime=$(cut -d' ' -f1 /proc/uptime)s kernel=$(uname -r)"
mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp; mkdir -p /run/lock/iscsi /var/lock /etc/target
ip link set lo up
for m in configfs target_core_mod target_core_iblock iscsi_target_mod iscsi_tcp sd_mod loop; do modprobe $m || echo "modprobe $m FAILED"; done
mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
/lib/systemd/systemd-udevd --daemon && udevadm trigger --action=add && udevadm settle -t 60
mkdir -p /run/dbus && dbus-daemon --system --fork
truncate -s 64M /tmp/backing.img; LOOP=$(losetup -f --show /tmp/backing.img); echo "loop=$LOOP"
echo "InitiatorName=iqn.2024-01.org.example:default" > /etc/iscsi/initiatorname.iscsi
sed -i 's/^node.startup = .*/node.startup = manual/' /etc/iscsi/iscsid.conf
iscsid; sleep 1
cd "$HERE/../.."
truncate -s 64M /tmp/backing2.img; LOOP2=$(losetup -f --show /tmp/backing2.img)
node --import tsx test/lab-lio/lio-scenario.ts "$LOOP" configfs 2>&1
node --import tsx test/lab-lio/lio-scenario.ts "$LOOP2" targetcli 2>&1
ls /sys/kernel/config/target/iscsi /sys/kernel/config/target/core
echo "GUEST-DONE uptime=$(cut -d' ' -f1 /proc/uptime)s"
sync; echo o > /proc/sysrq-trigger; sleep 30
