#!/usr/bin/env bash
# Runs the lab suites: for each test/lab/*.lab.test.ts (or the files named on the command line)
# boot ONE qemu guest with Debian's kernel (software emulation), the host root shared read-only
# over 9p, a scratch disk (serial cblab-pv0) and a results disk (serial cblab-results); the guest
# runs the suite with vitest (test/lab/guest-init.sh) and powers off; the results come back from
# the results disk. Ends with `N passed, N failed` and exits non-zero if anything failed.
#
# A file that is not a `.lab.test.ts` (a benchmark, say) runs as a script (`node --import tsx FILE`)
# and counts as one test: passed when it exits 0. Whatever a guest writes to $CBLAB_OUT comes back
# to tmp/lab-out/<name>/ in the checkout.
#
# Host services: when FILE has a sibling `<name>.host.mts` (name = FILE without `.lab.test.ts` or
# its extension), that runs on the host for the guest's lifetime: `node --import tsx HOOK DIR`
# starts what the guest needs (cinder-api, a database), writes DIR/guest.env (KEY=VALUE lines the
# guest exports) and then DIR/ready, and stops everything on SIGTERM. The guest reaches the host
# at 10.0.2.2 (qemu user networking; CBLAB_HOST_IP), where the host's loopback services answer.
#
# Env: CBLAB_SUITE_TIMEOUT (s, per guest, default 900), CBLAB_TOTAL_TIMEOUT (s, default 1500),
#      CBLAB_MEM (MiB, 2048), CBLAB_SMP (2), CBLAB_DISK_SIZE (8G), CBLAB_KEEP=1 keeps the work dirs,
#      CBLAB_SLOTS (1): how many guests may run at once on this host; more wait for a free slot,
#      since two emulated guests on two cores each run at half speed and time out.
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${CINDERBLOCK_LAB_CACHE:-/var/cache/cinderblock-lab}
SUITE_TIMEOUT=${CBLAB_SUITE_TIMEOUT:-900}
TOTAL_TIMEOUT=${CBLAB_TOTAL_TIMEOUT:-1500}
START=$(date +%s)
DEADLINE=$((START + TOTAL_TIMEOUT))
cd "$REPO"

passed=0; failed=0; skipped=0
# What went wrong, repeated at the very end: CI keeps only the tail of its log, and a suite that
# failed early in the run would otherwise be known there only by the count.
FAILURES=$(mktemp /tmp/cblab-failures.XXXXXX)
note_failure() {  # suite, reason, [file to tail], [lines]
  { echo "lab: FAILED $1: $2"
    if [[ -n ${3:-} && -s $3 ]]; then
      echo "  last lines of $3:"
      grep -v -E 'nvmet_tcp: failed cmd|NON_EXISTENT_LUN' "$3" | tail -"${4:-25}" | sed 's/^/  | /'
    fi
  } >>"$FAILURES"
}
finish() {
  echo
  if [[ -s $FAILURES ]]; then cat "$FAILURES"; echo; fi
  rm -f "$FAILURES"
  echo "lab: total $(($(date +%s) - START))s"
  echo "$passed passed, $failed failed"
  [[ $failed -eq 0 ]]
  exit $?
}

t=$(date +%s.%N)
if ! timeout 1200 "$HERE/setup-lab.sh"; then
  echo "lab: setup failed"; failed=1; finish
fi
echo "lab: setup $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s"

KDIR=$CACHE/current
KVER=$(ls "$KDIR/root/lib/modules")
[[ -e build/Release/cinderblock_native.node ]] || echo "lab: warning: the native addon is not built (npm run build:native); suites that need it will fail"

if (($#)); then suites=("$@"); else mapfile -t suites < <(ls test/lab/*.lab.test.ts 2>/dev/null | sort); fi
((${#suites[@]})) || { echo "lab: no test/lab/*.lab.test.ts"; finish; }

QEMU_PID=""; HOOK_PID=""
stop_hook() {
  [[ -n $HOOK_PID ]] || return 0
  kill -TERM "$HOOK_PID" 2>/dev/null
  for _ in $(seq 1 60); do kill -0 "$HOOK_PID" 2>/dev/null || break; sleep 0.5; done
  kill -KILL "$HOOK_PID" 2>/dev/null; wait "$HOOK_PID" 2>/dev/null; HOOK_PID=""
}
# One guest per slot: flock on $CACHE/vm-slot.N, held until the suite is done.
SLOT_FD=""
acquire_slot() {
  local n=${CBLAB_SLOTS:-1} i fd waited=0
  while :; do
    for ((i = 0; i < n; i++)); do
      exec {fd}>"$CACHE/vm-slot.$i"
      if flock -n "$fd"; then SLOT_FD=$fd; ((waited)) && echo "lab: got VM slot $i after ${waited}s"; return 0; fi
      exec {fd}>&-
    done
    ((waited == 0)) && echo "lab: waiting for a free VM slot (CBLAB_SLOTS=$n)"
    sleep 3; waited=$((waited + 3))
  done
}
release_slot() { [[ -n $SLOT_FD ]] && exec {SLOT_FD}>&-; SLOT_FD=""; }
on_signal() {
  stop_hook
  # QEMU_PID is timeout(1)'s pid: it passes TERM on to qemu and then exits
  [[ -n $QEMU_PID ]] && kill -TERM "$QEMU_PID" 2>/dev/null && wait "$QEMU_PID" 2>/dev/null
  echo "lab: interrupted"; failed=$((failed + 1)); finish
}
trap on_signal INT TERM

for suite in "${suites[@]}"; do
  suite=${suite#./}
  [[ -f $suite ]] || { echo "lab: $suite: no such file"; failed=$((failed + 1)); continue; }
  case $suite in *.lab.test.ts) base=${suite%.lab.test.ts}; kind=vitest ;; *) base=${suite%.*}; kind=script ;; esac
  name=$(basename "$base")
  # Two runs of one suite at once would share its host directory and results (and the second
  # would wipe the first's): the second waits for the first.
  [[ -n ${namelock:-} ]] && exec {namelock}>&-
  mkdir -p "$REPO/tmp/lab-host"
  exec {namelock}>"$REPO/tmp/lab-host/$name.lock"
  if ! flock -n "$namelock"; then
    echo "lab: $suite: another run of it is in progress on this machine; waiting for it to end"
    flock "$namelock"
  fi
  acquire_slot
  now=$(date +%s); left=$((DEADLINE - now))
  if ((left < 60)); then echo "lab: $suite: not run, the ${TOTAL_TIMEOUT}s budget is spent"; note_failure "$suite" "not run, the ${TOTAL_TIMEOUT}s budget (CBLAB_TOTAL_TIMEOUT) was spent"; failed=$((failed + 1)); continue; fi
  limit=$((SUITE_TIMEOUT < left ? SUITE_TIMEOUT : left))
  guest_limit=$((limit > 60 ? limit - 30 : 30))   # the guest gives up first, so its results still come back
  keep=0
  W=$(mktemp -d /tmp/cblab.XXXXXX)
  truncate -s "${CBLAB_DISK_SIZE:-8G}" "$W/pv0.img"
  truncate -s 64M "$W/results.img"
  echo
  echo "=== lab: $suite (limit ${limit}s, work dir $W)"
  HOSTDIR=""
  if [[ -f $base.host.mts ]]; then
    HOSTDIR=$REPO/tmp/lab-host/$name; rm -rf "$HOSTDIR"; mkdir -p "$HOSTDIR"
    node --import tsx "$base.host.mts" "$HOSTDIR" >"$HOSTDIR/hook.log" 2>&1 &
    HOOK_PID=$!
    for _ in $(seq 1 240); do [[ -e $HOSTDIR/ready ]] && break; kill -0 "$HOOK_PID" 2>/dev/null || break; sleep 0.5; done
    if [[ ! -e $HOSTDIR/ready ]]; then
      echo "lab: $suite: host services did not start; see $HOSTDIR/hook.log"; tail -20 "$HOSTDIR/hook.log"
      note_failure "$suite" "host services ($base.host.mts) did not start" "$HOSTDIR/hook.log" 20
      stop_hook; release_slot; rm -rf "$W"; failed=$((failed + 1)); continue
    fi
    echo "lab: $suite: host services up ($base.host.mts)"
  fi
  t=$(date +%s.%N)
  # The guest's console is the serial port on stdio; stdin is closed so qemu never reads the tty.
  timeout -k 5 "$limit" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -smp "${CBLAB_SMP:-2}" -m "${CBLAB_MEM:-2048}" \
    -display none -monitor none -serial stdio -no-reboot -nic user,model=virtio-net-pci \
    -kernel "$KDIR/root/boot/vmlinuz-$KVER" -initrd "$KDIR/initrd.gz" \
    -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
    -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
    -drive "file=$W/pv0.img,if=none,id=pv0,format=raw,cache=unsafe,aio=threads,discard=unmap" \
    -device virtio-blk-pci,drive=pv0,serial=cblab-pv0 \
    -drive "file=$W/results.img,if=none,id=res,format=raw,cache=unsafe" \
    -device virtio-blk-pci,drive=res,serial=cblab-results \
    -append "console=ttyS0 panic=-1 quiet loglevel=4 tsc=reliable mitigations=off cblab.init=$HERE/guest-init.sh cblab.suite=$suite cblab.kind=$kind cblab.hostdir=${HOSTDIR:-none} cblab.timeout=$guest_limit cblab.modules=$(readlink -f "$KDIR")/root/lib/modules/$KVER" \
    </dev/null > >(tee "$W/serial.log") 2>&1 &
  QEMU_PID=$!
  wait "$QEMU_PID"; qrc=$?
  QEMU_PID=""
  stop_hook
  release_slot
  sleep 0.2   # let tee drain
  boot=$(awk '/cblab-guest: up after/{sub(/,$/, "", $4); print $4; exit}' "$W/serial.log")
  echo "lab: $suite: guest ran $(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s (kernel up after ${boot:-?}, qemu exit $qrc)"
  mkdir -p "$W/out"
  tar -xf "$W/results.img" -C "$W/out" 2>/dev/null
  if [[ -d $W/out/files ]]; then
    rm -rf "$REPO/tmp/lab-out/$name"; mkdir -p "$REPO/tmp/lab-out"; cp -r "$W/out/files" "$REPO/tmp/lab-out/$name"
    echo "lab: $suite: files it wrote are in tmp/lab-out/$name/"
  fi
  if [[ $kind == script && -s $W/out/exit-code ]]; then
    if [[ $(cat "$W/out/exit-code") == 0 ]]; then passed=$((passed + 1)); r="1 passed, 0 failed"; else failed=$((failed + 1)); r="0 passed, 1 failed"; fi
    echo "lab: $suite: $r (script exit $(cat "$W/out/exit-code"))"
    [[ $r == 0* ]] && note_failure "$suite" "script exit $(cat "$W/out/exit-code")" "$W/serial.log" 30
  elif [[ $kind == vitest && -s $W/out/report.json ]]; then
    read -r p f s < <(node -e '
      const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
      const broken = (r.testResults || []).filter((x) => x.status === "failed" && !x.assertionResults.some((a) => a.status === "failed")).length;
      console.log(r.numPassedTests, r.numFailedTests + broken, r.numPendingTests + (r.numTodoTests || 0));
    ' "$W/out/report.json")
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-1})); skipped=$((skipped + ${s:-0}))
    echo "lab: $suite: ${p:-0} passed, ${f:-1} failed, ${s:-0} skipped"
    if [[ ${f:-1} != 0 ]]; then
      # vitest's own account of the failures starts at "Failed Tests"; the console's tail is its summary
      sed -n '/Failed Tests\|FAIL /,$p' "$W/serial.log" | head -60 >"$W/failed-part.log"
      [[ -s $W/failed-part.log ]] || cp "$W/serial.log" "$W/failed-part.log"
      note_failure "$suite" "${f:-1} failed: $(node -e '
        const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
        const names = (r.testResults || []).flatMap((x) => x.assertionResults.filter((a) => a.status === "failed").map((a) => a.fullName));
        const broken = (r.testResults || []).filter((x) => x.status === "failed" && !x.assertionResults.some((a) => a.status === "failed")).map((x) => (x.message || "suite error").split("\n")[0]);
        console.log([...names, ...broken].join(" | ").slice(0, 900));
      ' "$W/out/report.json")" "$W/failed-part.log" 45
      [[ -n $HOSTDIR && -s $HOSTDIR/hook.log ]] && note_failure "$suite" "its host services' log ($HOSTDIR/hook.log)" "$HOSTDIR/hook.log" 15
    fi
  elif [[ $kind == vitest && -s $W/out/exit-code ]]; then
    # the guest stopped a suite that outran its limit: no report, but its console names what finished
    why="stopped at the guest's limit ($((limit > 60 ? limit - 30 : 30))s) before vitest wrote its report (exit $(cat "$W/out/exit-code")); the tests it finished are above the cut"
    echo "lab: $suite: $why"
    note_failure "$suite" "$why" "$W/serial.log" 40
    [[ -n $HOSTDIR && -s $HOSTDIR/hook.log ]] && note_failure "$suite" "its host services' log ($HOSTDIR/hook.log)" "$HOSTDIR/hook.log" 15
    failed=$((failed + 1)); keep=1
  else
    why="no results came back (qemu exit $qrc$([[ $qrc -eq 124 || $qrc -eq 137 ]] && echo ", timed out after ${limit}s"))"
    echo "lab: $suite: $why; see $W/serial.log"
    note_failure "$suite" "$why" "$W/serial.log" 40
    [[ -n $HOSTDIR && -s $HOSTDIR/hook.log ]] && note_failure "$suite" "its host services' log ($HOSTDIR/hook.log)" "$HOSTDIR/hook.log" 15
    failed=$((failed + 1)); keep=1
  fi
  if [[ ${CBLAB_KEEP:-0} == 1 || ${keep:-0} == 1 ]]; then echo "lab: kept $W"; else rm -rf "$W"; fi
done
finish
