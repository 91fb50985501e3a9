#!/usr/bin/env bash
# Builds the Debian package from a built checkout (`npm ci && npm run build` first; nothing here
# touches the network):
#
#   bash scripts/build-deb.sh [OUTDIR]        # default OUTDIR: tmp/deb
#
# The package holds the agent under /usr/lib/cinderblock (dist/, bin/, the addon, production
# node_modules), /usr/bin/cinderblock, the systemd unit, /etc/default/cinderblock (reads
# /etc/cinder/cinder.conf, then /etc/cinderblock/conf.d) and the docs. It installs the unit
# without enabling it: see packaging/deb/postinst for why.
#
# Env: CB_DEB_VERSION overrides the version (default: package.json's), for upgrade tests.
# Prints the path of the .deb on its last line.
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
OUTDIR=$(mkdir -p "${1:-tmp/deb}" && cd "${1:-tmp/deb}" && pwd)

VERSION=${CB_DEB_VERSION:-$(node -p 'require("./package.json").version')}
if ! [[ $VERSION =~ ^[0-9][A-Za-z0-9.+~-]*$ ]]; then
  echo "build-deb: CB_DEB_VERSION '$VERSION' is not a Debian version (digits first, then [A-Za-z0-9.+~-])" >&2
  exit 2
fi
ARCH=$(dpkg --print-architecture)
ADDON=build/Release/cinderblock_native.node
for f in "$ADDON" dist/src/cli/main.js node_modules/.package-lock.json; do
  [[ -e $f ]] || { echo "build-deb: $f is missing: run 'npm ci && npm run build' first" >&2; exit 2; }
done
NODE_MAJOR=$(node -p 'require("./package.json").engines.node.match(/\d+/)[0]')

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
LIB=$STAGE/usr/lib/cinderblock
DOC=$STAGE/usr/share/doc/cinderblock
mkdir -p "$LIB/build/Release" "$STAGE/usr/bin" "$STAGE/lib/systemd/system" "$STAGE/etc/default" \
  "$STAGE/etc/cinderblock/conf.d" "$DOC" "$STAGE/DEBIAN"

cp -a dist bin package.json package-lock.json "$LIB/"
cp "$ADDON" "$LIB/build/Release/"
# `cinderblock --version` reads package.json: make it say the package's version.
node -e 'const f = process.argv[1], p = JSON.parse(require("fs").readFileSync(f, "utf8")); p.version = process.argv[2]; require("fs").writeFileSync(f, JSON.stringify(p, null, 2) + "\n")' "$LIB/package.json" "$VERSION"
# Production dependencies only, from the checkout's own node_modules (already built for this
# Node): prune needs no registry.
cp -a node_modules "$LIB/"
(cd "$LIB" && npm prune --omit=dev --ignore-scripts --offline --no-audit --no-fund >/dev/null)
# Build leftovers of native modules (those with a binding.gyp) that the runtime never loads: of
# their build/ only build/Release/*.node is loaded, and better-sqlite3's deps/ and src/ are the C
# sources it was built from (20 MB of the package otherwise). Other packages' build/ is their code.
while IFS= read -r gyp; do
  mod=$(dirname "$gyp")
  [[ -d $mod/build ]] || continue
  find "$mod/build" -type f ! -path "$mod/build/Release/*.node" -delete
  find "$mod/build" -depth -type d -name obj.target -exec rm -rf {} +
  find "$mod/build" -depth -type d -empty -delete
done < <(find "$LIB/node_modules" -name binding.gyp -not -path '*/node_modules/*/node_modules/*/node_modules/*')
rm -rf "$LIB/node_modules/better-sqlite3/deps" "$LIB/node_modules/better-sqlite3/src" "$LIB/node_modules/better-sqlite3/build/Release/test_extension.node"
ln -s ../lib/cinderblock/bin/cinderblock.js "$STAGE/usr/bin/cinderblock"

cp systemd/cinderblock.service "$STAGE/lib/systemd/system/"
cp packaging/deb/default "$STAGE/etc/default/cinderblock"
cp packaging/deb/cinderblock.conf "$STAGE/etc/cinderblock/conf.d/cinderblock.conf"
cp README.md "$DOC/"
cp packaging/deb/copyright "$DOC/"
cp packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$STAGE/DEBIAN/"
printf '%s\n' /etc/default/cinderblock /etc/cinderblock/conf.d/cinderblock.conf >"$STAGE/DEBIAN/conffiles"

SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat >"$STAGE/DEBIAN/control" <<EOF
Package: cinderblock
Version: $VERSION
Architecture: $ARCH
Maintainer: cinderblock maintainers <maintainers@cinderblock.invalid>
Installed-Size: $SIZE
Depends: nodejs (>= $NODE_MAJOR), lvm2, thin-provisioning-tools, util-linux
Recommends: tgt | targetcli-fb, open-iscsi, qemu-utils
Suggests: multipath-tools, nvme-cli
Section: admin
Priority: optional
Description: storage-node agent taking the place of OpenStack cinder-volume
 cinderblock serves Cinder's volume RPC API for LVM (thick and thin) and file
 pools, exporting over tgt or LIO, from cinder-volume's own configuration and
 database, so cinder-api, the scheduler, nova and os-brick work unchanged.
 .
 The unit is installed but not enabled: stop cinder-volume and run
 "systemctl enable --now cinderblock" to switch.
EOF
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum >DEBIAN/md5sums)

DEB=$OUTDIR/cinderblock_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >/dev/null
echo "$DEB"
