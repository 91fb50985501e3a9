#!/usr/bin/env bash
# The container image (issue 16): built from the repo's Dockerfile with podman and started.
# No registry is reachable on these machines, so the base image is made here: a minimal bookworm
# root from debootstrap (the tarball deb-lifecycle.sh caches) with this machine's Node 20 in it
# (dpkg-repack of the installed nodejs), imported into podman. The build's RUN steps reach
# Debian's mirror and the npm registry over the host's network; the image then runs with no
# network at all and must answer `cinderblock --version`, `config show` and `doctor`.
# Needs root, podman, runc, debootstrap, dpkg-repack. Prints `N passed, N failed`.
#
# Env: CB_PKGTEST_CACHE (/var/cache/cinderblock-pkgtest), CB_PKGTEST_KEEP=1 keeps the images.
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
REPO=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${CB_PKGTEST_CACHE:-/var/cache/cinderblock-pkgtest}
WORK=$(mktemp -d /tmp/cb-ctrtest.XXXXXX)
export CONTAINERS_CONF=$REPO/test/package/containers.conf
BASE_IMAGE=localhost/cinderblock-test-base:bookworm-node20
IMAGE=localhost/cinderblock:test
VERSION=$(node -p "require('$REPO/package.json').version")
passed=0; failed=0

ok() { echo "ok   - $*"; passed=$((passed + 1)); }
bad() { echo "FAIL - $*"; failed=$((failed + 1)); }
pm() { podman --runtime /usr/sbin/runc "$@"; }
cleanup() {
  for m in dev proc; do mountpoint -q "$WORK/root/$m" && umount -l "$WORK/root/$m"; done
  if [[ ${CB_PKGTEST_KEEP:-} != 1 ]]; then pm rmi -f "$IMAGE" "$BASE_IMAGE" >/dev/null 2>&1; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
finish() { echo; echo "$passed passed, $failed failed"; [[ $failed -eq 0 ]]; exit $?; }
die() { bad "$*"; finish; }

[[ $(id -u) -eq 0 ]] || die "needs root"
for tool in podman /usr/sbin/runc debootstrap dpkg-repack; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install podman runc debootstrap dpkg-repack"
done

echo "# the base image"
ROOT=$WORK/root
# shellcheck source=base-root.sh
. "$REPO/test/package/base-root.sh"
unpack_bookworm_root "$ROOT"
# nodejs with its Depends (python3, ca-certificates) from Debian's mirror, as a Node 20 image has them.
NODE_DEB=$(node_deb) || die "a nodejs package for the base"
cp "$NODE_DEB" "$ROOT/tmp/nodejs.deb"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
mount -t proc proc "$ROOT/proc" && mount --bind /dev "$ROOT/dev" || die "mounting proc and dev in the base root"
{ chroot "$ROOT" apt-get update -q && DEBIAN_FRONTEND=noninteractive chroot "$ROOT" apt-get install -y -q --no-install-recommends /tmp/nodejs.deb \
  && chroot "$ROOT" apt-get clean; } >"$WORK/node.log" 2>&1
node_rc=$?
umount "$ROOT/dev" "$ROOT/proc"
[[ $node_rc -eq 0 ]] || { tail "$WORK/node.log"; die "nodejs into the base"; }
rm -f "$ROOT/tmp/nodejs.deb"
# dpkg-repack packs the files dpkg lists for nodejs, and npm on this machine has been updated in
# place since (its file list is stale, some of its modules missing from the repack): the working
# npm is the machine's own tree.
rm -rf "$ROOT/usr/lib/node_modules/npm" && cp -a /usr/lib/node_modules/npm "$ROOT/usr/lib/node_modules/npm" || die "npm into the base"
chroot "$ROOT" node --version >/dev/null 2>&1 || die "node does not run in the base root"
# This machine's own trust store: its egress to the npm registry may go through a proxy whose CA
# only the machine's store has (an image built elsewhere needs nothing of the kind). node-gyp
# builds against the Debian package's headers in /usr/include/node (as this machine's npmrc says)
# rather than downloading them.
cp -a /usr/local/share/ca-certificates/. "$ROOT/usr/local/share/ca-certificates/" 2>/dev/null
chroot "$ROOT" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates in the base"
tar -C "$ROOT" -c . | pm import --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' --change 'ENV npm_config_nodedir=/usr' - "$BASE_IMAGE" >/dev/null || die "podman import of the base"
ok "base image $BASE_IMAGE (bookworm minbase + Node $(chroot "$ROOT" node --version))"

echo "# podman build"
t0=$(date +%s)
if pm build --network=host --build-arg BASE="$BASE_IMAGE" -t "$IMAGE" "$REPO" >"$WORK/build.log" 2>&1; then
  ok "podman build of the Dockerfile ($(($(date +%s) - t0)) s)"
else
  tail -40 "$WORK/build.log"; die "podman build"
fi

echo "# the image, with no network"
out=$(pm run --rm --network=none "$IMAGE" --version 2>&1)
if [[ $out == "$VERSION" ]]; then ok "cinderblock --version in the container: $out"; else echo "$out"; bad "cinderblock --version (got '$out')"; fi
mkdir -p "$WORK/etc-cinder"
cat >"$WORK/etc-cinder/cinder.conf" <<'EOF'
[DEFAULT]
host = cb-container-test
enabled_backends = file-1
transport_url = rabbit://guest:guest@127.0.0.1:5672/
[database]
connection = sqlite:////var/lib/cinder/cinder.sqlite
[file-1]
volume_driver = file
target_helper = fake
EOF
out=$(pm run --rm --network=none -v "$WORK/etc-cinder:/etc/cinder:ro" "$IMAGE" config show --config-file /etc/cinder/cinder.conf 2>&1)
if grep -q 'enabled_backends' <<<"$out" && grep -q 'file-1' <<<"$out"; then ok "cinderblock config show reads the mounted cinder.conf"; else echo "$out" | tail -20; bad "config show"; fi
rc=0; out=$(pm run --rm --network=none -v "$WORK/etc-cinder:/etc/cinder:ro" "$IMAGE" doctor --config-file /etc/cinder/cinder.conf 2>&1) || rc=$?
# No broker and no database in a network-less container: doctor must run, report those checks as
# failed (exit 1) and say what to do, not crash.
if [[ $rc -eq 1 ]] && grep -qi 'broker\|rabbit' <<<"$out" && grep -qi 'database' <<<"$out"; then
  ok "cinderblock doctor runs in the container and reports the missing broker and database (exit 1)"
else
  echo "$out" | tail -30; bad "doctor in the container (exit $rc)"
fi
finish
