#!/usr/bin/env bash
# The Debian package's life in a throwaway Debian root (issue 16, "packages people install"):
#   1. build two versions of the package from this checkout (scripts/build-deb.sh);
#   2. debootstrap a minimal bookworm root (cached as a tarball), give it this machine's Node 20
#      (dpkg-repack of the installed nodejs package, cached: bookworm's own nodejs is 18);
#   3. apt-get install systemd and the first version into the root (Depends from Debian's mirror);
#   4. check the command, the unit (systemd-analyze verify) and the files it installed; start the
#      agent exactly as the unit does (/etc/default/cinderblock, the unit's ExecStart) inside the
#      root with NOTIFY_SOCKET, against this machine's RabbitMQ and a Cinder database made by the
#      real cinder-manage, and wait for READY=1; SIGTERM must give STOPPING=1 and exit 0;
#   5. upgrade to the second version with a locally edited conffile: the edit survives;
#   6. remove (conffiles stay), then purge (they go).
# Needs root. Prints `N passed, N failed` and exits non-zero on any failure.
#
# Env: CB_PKGTEST_CACHE (/var/cache/cinderblock-pkgtest), CB_PKGTEST_KEEP=1 keeps the work dir.
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export DEBIAN_FRONTEND=noninteractive
REPO=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${CB_PKGTEST_CACHE:-/var/cache/cinderblock-pkgtest}
WORK=$(mktemp -d /tmp/cb-pkgtest.XXXXXX)
ROOT=$WORK/root
BASE_VERSION=$(node -p "require('$REPO/package.json').version")
V1="${BASE_VERSION}~pkgtest1"
V2="${BASE_VERSION}~pkgtest2"
HOSTNAME_IN_CONF="cb-pkgtest-$$"
passed=0; failed=0
receiver_pid=""; agent_pid=""

ok() { echo "ok   - $*"; passed=$((passed + 1)); }
bad() { echo "FAIL - $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
in_root() { chroot "$ROOT" "$@"; }

cleanup() {
  [[ -n $agent_pid ]] && kill -9 "$agent_pid" 2>/dev/null
  [[ -n $receiver_pid ]] && kill "$receiver_pid" 2>/dev/null
  for m in dev/pts dev proc sys; do mountpoint -q "$ROOT/$m" && umount -l "$ROOT/$m"; done
  [[ ${CB_PKGTEST_KEEP:-} == 1 ]] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
finish() { echo; echo "$passed passed, $failed failed"; [[ $failed -eq 0 ]]; exit $?; }
die() { bad "$*"; finish; }

[[ $(id -u) -eq 0 ]] || die "needs root (debootstrap, chroot, dpkg in the root)"
for tool in debootstrap dpkg-repack dpkg-deb systemd-analyze; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install debootstrap dpkg-repack systemd"
done

echo "# building $V1 and $V2"
DEB1=$(CB_DEB_VERSION=$V1 bash "$REPO/scripts/build-deb.sh" "$WORK/debs" | tail -1) || die "build-deb.sh $V1"
DEB2=$(CB_DEB_VERSION=$V2 bash "$REPO/scripts/build-deb.sh" "$WORK/debs" | tail -1) || die "build-deb.sh $V2"
ok "scripts/build-deb.sh built $(basename "$DEB1") and $(basename "$DEB2")"

echo "# the root"
# shellcheck source=base-root.sh
. "$REPO/test/package/base-root.sh"
unpack_bookworm_root "$ROOT"
NODE_DEB=$(node_deb) || die "a nodejs package for the root"
mount -t proc proc "$ROOT/proc" && mount --bind /dev "$ROOT/dev" && mount --bind /dev/pts "$ROOT/dev/pts" && mount -t sysfs sysfs "$ROOT/sys" \
  || die "mounting proc, dev and sys in the root"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# Nothing starts services inside the root (lvm2's, say): the host's are the ones in use.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d" && chmod 755 "$ROOT/usr/sbin/policy-rc.d"
cp "$NODE_DEB" "$ROOT/tmp/nodejs.deb"
cp "$DEB1" "$DEB2" "$ROOT/tmp/"
in_root apt-get update -q >"$WORK/apt.log" 2>&1 || { tail "$WORK/apt.log"; die "apt-get update in the root"; }
ok "a minimal bookworm root with this machine's nodejs"

echo "# install $V1"
if in_root apt-get install -y -q --no-install-recommends systemd /tmp/nodejs.deb "/tmp/$(basename "$DEB1")" >>"$WORK/apt.log" 2>&1; then
  ok "apt-get install cinderblock $V1 (and its Depends) into the root"
else
  tail -30 "$WORK/apt.log"; die "apt-get install cinderblock $V1"
fi
check "cinderblock --version prints $V1" test "$(in_root cinderblock --version 2>&1)" = "$V1"
check "dpkg knows $V1" test "$(in_root dpkg-query -W -f '${Version}' cinderblock)" = "$V1"
check "the unit is installed and not enabled" bash -c "[[ -f '$ROOT/lib/systemd/system/cinderblock.service' && ! -e '$ROOT/etc/systemd/system/multi-user.target.wants/cinderblock.service' ]]"
check "nothing under /opt" bash -c "[[ -z \$(ls -A '$ROOT/opt') ]]"
check "the addon and better-sqlite3 load in the root" in_root node -e "
  require('/usr/lib/cinderblock/build/Release/cinderblock_native.node');
  require('/usr/lib/cinderblock/node_modules/better-sqlite3')(':memory:').prepare('select 1').get();"
if out=$(systemd-analyze --root="$ROOT" verify /lib/systemd/system/cinderblock.service 2>&1); then
  ok "systemd-analyze verify of the installed unit"
else
  echo "$out"; bad "systemd-analyze verify of the installed unit"
fi

echo "# the unit's command line starts the agent"
mkdir -p "$ROOT/etc/cinder" "$ROOT/var/lib/cinder/locks" "$ROOT/run"
write_conf() { # $1: the path the database is seen at
  cat <<EOF
[DEFAULT]
host = $HOSTNAME_IN_CONF
transport_url = rabbit://guest:guest@127.0.0.1:5672/
enabled_backends = file-1
state_path = /var/lib/cinder
report_interval = 2
[database]
connection = sqlite:///$1
[file-1]
volume_backend_name = file-1
volume_driver = file
target_helper = fake
[oslo_concurrency]
lock_path = /var/lib/cinder/locks
EOF
}
write_conf /var/lib/cinder/cinder.sqlite >"$ROOT/etc/cinder/cinder.conf"
write_conf "$ROOT/var/lib/cinder/cinder.sqlite" >"$WORK/host-cinder.conf"
/usr/bin/cinder-manage --config-file "$WORK/host-cinder.conf" db sync >"$WORK/db-sync.log" 2>&1 \
  || { tail "$WORK/db-sync.log"; die "cinder-manage db sync"; }
/usr/bin/python3 -u -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    print(s.recv(4096).decode().replace("\n", "|"), flush=True)
' "$ROOT/run/notify.sock" >"$WORK/notify.log" 2>&1 &
receiver_pid=$!
for _ in $(seq 50); do grep -q bound "$WORK/notify.log" && break; sleep 0.1; done
# The unit's own ExecStart and environment, read from the installed files.
exec_start=$(sed -n 's/^ExecStart=//p' "$ROOT/lib/systemd/system/cinderblock.service")
chroot "$ROOT" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin NOTIFY_SOCKET=/run/notify.sock \
  sh -c ". /etc/default/cinderblock; exec $exec_start" >"$WORK/agent.log" 2>&1 &
agent_pid=$!
ready=""
for _ in $(seq 120); do
  grep -q 'READY=1' "$WORK/notify.log" && { ready=1; break; }
  kill -0 "$agent_pid" 2>/dev/null || break
  sleep 0.5
done
if [[ -n $ready ]]; then ok "the agent started from the unit's ExecStart said READY=1"; else tail -30 "$WORK/agent.log"; bad "READY=1 from the agent started as the unit starts it"; fi
check "its service row is up in the database" bash -c "[[ \$(/usr/bin/python3 -c \"import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\\\"select count(*) from services where host='$HOSTNAME_IN_CONF@file-1' and topic='cinder-volume' and deleted=0\\\").fetchone()[0])\" '$ROOT/var/lib/cinder/cinder.sqlite') == 1 ]]"
kill -TERM "$agent_pid" 2>/dev/null
wait "$agent_pid"; rc=$?; agent_pid=""
check "SIGTERM: exit 0 (was $rc)" test "$rc" -eq 0
check "SIGTERM: STOPPING=1 sent" grep -q 'STOPPING=1' "$WORK/notify.log"
doctor_rc=0; in_root cinderblock doctor --config-file /etc/cinder/cinder.conf >"$WORK/doctor.log" 2>&1 || doctor_rc=$?
# 0: all checks pass; 1: it ran and some check failed (no tgtd in the root, say). Both are a working command.
if [[ $doctor_rc -le 1 ]] && grep -q 'database' "$WORK/doctor.log"; then ok "cinderblock doctor runs in the root (exit $doctor_rc)"; else cat "$WORK/doctor.log"; bad "cinderblock doctor (exit $doctor_rc)"; fi

echo "# upgrade to $V2 with a local edit of a conffile"
echo "# local edit kept across upgrades" >>"$ROOT/etc/cinderblock/conf.d/cinderblock.conf"
if in_root dpkg -i "/tmp/$(basename "$DEB2")" >"$WORK/upgrade.log" 2>&1; then ok "dpkg -i $V2 over $V1"; else cat "$WORK/upgrade.log"; bad "dpkg -i $V2 over $V1"; fi
check "cinderblock --version prints $V2" test "$(in_root cinderblock --version 2>&1)" = "$V2"
check "the edited conffile survived the upgrade" grep -q 'local edit kept' "$ROOT/etc/cinderblock/conf.d/cinderblock.conf"

echo "# remove, then purge"
in_root dpkg -r cinderblock >"$WORK/remove.log" 2>&1 || { cat "$WORK/remove.log"; bad "dpkg -r"; }
check "remove: program files gone" bash -c "[[ ! -e '$ROOT/usr/lib/cinderblock' && ! -e '$ROOT/usr/bin/cinderblock' && ! -e '$ROOT/lib/systemd/system/cinderblock.service' ]]"
check "remove: conffiles kept" test -f "$ROOT/etc/default/cinderblock"
in_root dpkg -P cinderblock >"$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log"; bad "dpkg -P"; }
check "purge: /etc/cinderblock and /etc/default/cinderblock gone" bash -c "[[ ! -e '$ROOT/etc/cinderblock' && ! -e '$ROOT/etc/default/cinderblock' ]]"
check "purge: dpkg no longer lists cinderblock" bash -c "! chroot '$ROOT' dpkg-query -W cinderblock >/dev/null 2>&1"
finish
