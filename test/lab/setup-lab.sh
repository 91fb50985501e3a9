#!/usr/bin/env bash
# Prepares the storage lab (see test/lab/README.md): the host packages the guest uses through the
# 9p root, Debian's stock kernel unpacked beside its modules, and a busybox initramfs that mounts
# the host root read-only with a tmpfs overlay. Idempotent: a second run only checks and returns.
#
# Usage: test/lab/setup-lab.sh            (cache: $CINDERBLOCK_LAB_CACHE, default /var/cache/cinderblock-lab)
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${CINDERBLOCK_LAB_CACHE:-/var/cache/cinderblock-lab}
export DEBIAN_FRONTEND=noninteractive

now() { date +%s.%N; }
T0=$(now)
timing() { awk -v a="$1" -v b="$(now)" -v n="$2" 'BEGIN{printf "lab-setup: %s %.1fs\n", n, b-a}' >&2; }

# The guest runs the host's own userspace, so every tool a lab suite calls is installed here.
PACKAGES=(
  qemu-system-x86 busybox-static cpio kmod udev dbus lvm2 thin-provisioning-tools
  targetcli-fb python3-rtslib-fb open-iscsi multipath-tools sg3-utils nvme-cli
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  t=$(now)
  echo "lab-setup: installing ${missing[*]}" >&2
  # Debian starts packaged daemons (iscsid, multipathd, tgt...) on install: the host must not run them.
  policy=/usr/sbin/policy-rc.d; had_policy=0; [[ -e $policy ]] && had_policy=1
  if ((!had_policy)); then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; fi
  trap '((had_policy)) || rm -f '"$policy" EXIT
  apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" ||
    { apt-get update -q -o DPkg::Lock::Timeout=600 &&
      apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"; }
  timing "$t" packages
fi

# One kernel at a time: a kernel directory is complete once `ready` exists in it.
KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6/{print $2; exit}')
[[ -n $KPKG ]] || { echo "lab-setup: cannot find the kernel package behind linux-image-amd64 (apt-get update?)" >&2; exit 1; }
KVER=${KPKG#linux-image-}
KDIR=$CACHE/kernel-$KVER
mkdir -p "$CACHE"
exec 9>"$CACHE/.setup.lock"
flock -w 900 9 || { echo "lab-setup: another setup holds $CACHE/.setup.lock" >&2; exit 1; }

if [[ ! -e $KDIR/ready ]]; then
  t=$(now)
  rm -rf "$KDIR.tmp"; mkdir -p "$KDIR.tmp"
  (cd "$KDIR.tmp" && apt-get download -q "$KPKG" >/dev/null)
  dpkg-deb -x "$KDIR.tmp"/linux-image-*.deb "$KDIR.tmp/root"
  rm -f "$KDIR.tmp"/linux-image-*.deb
  depmod -b "$KDIR.tmp/root" "$KVER"
  rm -rf "$KDIR"; mv "$KDIR.tmp" "$KDIR"
  touch "$KDIR/ready"
  timing "$t" kernel
fi

# The initramfs depends on its builder: rebuild when the script changes.
SUM=$(sha256sum "$HERE/build-initramfs.sh" | cut -c1-16)
if [[ ! -e $KDIR/initrd-$SUM.gz ]]; then
  t=$(now)
  rm -f "$KDIR"/initrd-*.gz
  "$HERE/build-initramfs.sh" "$KDIR/root" "$KVER" "$KDIR/initrd-$SUM.gz.tmp"
  mv "$KDIR/initrd-$SUM.gz.tmp" "$KDIR/initrd-$SUM.gz"
  timing "$t" initramfs
fi
ln -sfn "kernel-$KVER" "$CACHE/current"
ln -sfn "initrd-$SUM.gz" "$KDIR/initrd.gz"
timing "$T0" total
echo "lab-setup: ready: kernel $KVER in $KDIR" >&2
