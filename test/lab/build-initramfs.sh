#!/usr/bin/env bash
# Builds the lab's initramfs: static busybox plus the few modules needed to reach the host root
# (virtio-pci, 9p, overlay). Its /init mounts the host's / read-only over 9p (tag `hostroot`), puts
# a tmpfs overlay on top so the guest can write anywhere, and hands over to the program named by
# `cblab.init=` on the kernel command line (test/lab/guest-init.sh).
# Usage: build-initramfs.sh <unpacked kernel root> <kernel version> <output .cpio.gz>
set -euo pipefail
KROOT=$1; KVER=$2; OUT=$3
MODDIR=$KROOT/lib/modules/$KVER
WANT=(virtio_pci 9pnet_virtio 9p overlay)

W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
mkdir -p "$W"/{bin,dev,proc,sys,lower,upper,newroot,modules}
cp /bin/busybox "$W/bin/busybox"
for applet in sh mount umount mkdir insmod switch_root sleep cat echo; do ln -s busybox "$W/bin/$applet"; done

# Dependencies first, each module once, in the order modinfo reports them.
order=()
add() {
  local m=$1 d
  for seen in "${order[@]:-}"; do [[ $seen == "$m" ]] && return; done
  for d in $(modinfo -b "$KROOT" -k "$KVER" -F depends "$m" | tr ',' ' '); do add "$d"; done
  order+=("$m")
}
for m in "${WANT[@]}"; do add "$m"; done
for m in "${order[@]}"; do
  f=$(modinfo -b "$KROOT" -k "$KVER" -n "$m")
  case $f in
    *.ko) cp "$f" "$W/modules/$m.ko" ;;
    *.ko.xz) xz -dc "$f" >"$W/modules/$m.ko" ;;
    *.ko.zst) zstd -qdc "$f" >"$W/modules/$m.ko" ;;
    *) echo "build-initramfs: unexpected module file $f" >&2; exit 1 ;;
  esac
done

{
  echo '#!/bin/sh'
  echo 'mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev'
  for m in "${order[@]}"; do echo "insmod /modules/$m.ko"; done
  cat <<'IEOF'
fail() { echo "cblab-initramfs: $*"; echo o >/proc/sysrq-trigger; sleep 60; }
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower || fail "9p mount of the host root failed"
mount -t tmpfs -o size=1536m,mode=0755 tmpfs /upper && mkdir -p /upper/data /upper/work
mount -t overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work overlay /newroot || fail "overlay mount failed"
init=$(sed -n 's/.*cblab\.init=\([^ ]*\).*/\1/p' /proc/cmdline)
umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot ${init:-/bin/sh}
IEOF
} >"$W/init"
chmod +x "$W/init"
(cd "$W" && find . | cpio -o -H newc --quiet | gzip -1) >"$OUT"
echo "build-initramfs: $OUT ($(stat -c %s "$OUT") bytes; modules: ${order[*]})" >&2
