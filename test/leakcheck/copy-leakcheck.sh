#!/usr/bin/env bash
# Leak check of the native copy engine: builds it (native/copy_engine.cc and every
# native/copy/*.cc: all of the engine, none of the Node-API glue) with a standalone driver
# (copy-harness.cc: copies, sparse copies, checksums, clears, failures and cancels on both I/O
# backends) and runs it
#   1. under AddressSanitizer + LeakSanitizer + UBSan (memory errors, leaks), and
#   2. under valgrind --leak-check=full --track-fds=yes (threads backend: valgrind cannot see
#      the kernel fill io_uring buffers, so it would flag their bytes as uninitialised),
# each also asserting that fd and thread counts are back where they started.
# Needs g++ (and valgrind for step 2; skipped with a note if it is missing). Exit 0 = clean.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/cinderblock-leakcheck.XXXXXX")"
trap 'rm -rf "$work"' EXIT

srcs=("$here/copy-harness.cc" "$root/native/copy_engine.cc" "$root/native/copy/"*.cc)
flags=(-std=c++17 -g -Wall -Wextra -pthread -I"$root/native")

echo "== AddressSanitizer + LeakSanitizer + UBSan"
g++ "${flags[@]}" -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
  -o "$work/harness-asan" "${srcs[@]}"
mkdir -p "$work/asan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 "$work/harness-asan" "$work/asan"

if command -v valgrind >/dev/null; then
  echo "== valgrind (memcheck, --track-fds)"
  g++ "${flags[@]}" -O1 -o "$work/harness" "${srcs[@]}"
  mkdir -p "$work/vg"
  valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,possible \
    --track-fds=yes --log-file="$work/valgrind.log" "$work/harness" "$work/vg" threads-only
  # --track-fds lists every fd open at exit; all of them must be ones the harness inherited.
  leaked=$(awk '/== Open /{open=$0; next} open!="" { if ($0 !~ /inherited from parent/) print open; open="" }' "$work/valgrind.log")
  if [[ -n "$leaked" ]]; then
    cat "$work/valgrind.log"
    echo "copy-leakcheck: descriptors left open at exit" >&2
    exit 1
  fi
  grep -E "FILE DESCRIPTORS|ERROR SUMMARY|definitely|possibly" "$work/valgrind.log" || true
else
  echo "== valgrind not installed: skipped (apt-get install -y valgrind)"
fi
echo "copy-leakcheck: clean"
