# Sourced by deb-lifecycle.sh and container.sh: the throwaway Debian root both start from.
# Expects CACHE and WORK set, and die() defined, by the caller.

# A minimal bookworm root in $1: debootstrapped once (about a minute), then unpacked from the
# cached tarball.
unpack_bookworm_root() {
  local root=$1 tarball=$CACHE/bookworm-minbase.tar mirror
  mkdir -p "$root" "$CACHE"
  if [[ -s $tarball ]]; then tar -C "$root" -xf "$tarball"; return; fi
  mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  debootstrap --variant=minbase bookworm "$root" "${mirror:-http://deb.debian.org/debian}" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -20 "$WORK/debootstrap.log"; die "debootstrap"; }
  tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
}

# Prints the path of a .deb of this machine's installed nodejs (bookworm's own is 18, the agent
# needs 20), repacked once per nodejs version with dpkg-repack and cached.
node_deb() {
  local version deb
  version=$(dpkg-query -W -f '${Version}' nodejs 2>/dev/null) || die "nodejs is not installed as a Debian package here"
  deb=$CACHE/nodejs_${version}.deb
  if [[ ! -s $deb ]]; then
    mkdir -p "$WORK/repack"
    (cd "$WORK/repack" && dpkg-repack nodejs >"$WORK/repack.log" 2>&1) || { tail "$WORK/repack.log"; die "dpkg-repack nodejs"; }
    mv "$WORK"/repack/nodejs_*.deb "$deb"
  fi
  echo "$deb"
}
