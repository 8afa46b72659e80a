#!/usr/bin/env bash
# Failed checkpoint writes must not leave their temporary folders behind (2 DP ranks, on a small
# tmpfs, as root; exits 77 = skipped where tmpfs cannot be mounted):
#   1. a write killed half-way leaves <step>.tmp-*; the next run removes it before writing, so a
#      checkpoint that fits only without the leftover is written;
#   2. a write that fails with ENOSPC exits != 0 naming the error, removes its partial folder and
#      keeps latest.txt;
#   3. once space is freed, resuming succeeds.
BIN=${1:?usage: checkpoint_enospc_test.sh path/to/strun-train}
source "$(dirname "$0")/train_test_lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: mounting a tmpfs needs root"; exit 77; }
mkdir -p "$W/disk"
mount -t tmpfs -o size=80m strun-enospc-test "$W/disk" 2>mount.err ||
  { cat mount.err; echo "SKIP: cannot mount a tmpfs here"; exit 77; }
EXTRA_CLEANUP+=("umount '$W/disk'")
prepare_tiny
CK=$W/disk/ck

avail() { df --output=avail -B1 "$W/disk" | tail -1 | tr -d ' '; }
used() { du -s -B1 "$1" | cut -f1; }
no_tmp() { ! ls -d "$CK"/*.tmp-* >/dev/null 2>&1; }

# ---- 1. the leftover of a killed write is removed when the next run starts ---------------------
config four 2 4 2 "$CK"
if STRUN_TRAIN_FAULT_KILL_IN_CHECKPOINT=4 run 2 four.yaml killed; then fail "the killed run exited 0"; fi
grep -q 'fault injection: SIGKILL during checkpoint 4' killed.0.log || { cat killed.0.log; fail "fault not injected"; }
[ "$(cat "$CK/latest.txt")" = 2 ] || fail "latest.txt is not 2 after the killed write"
left=$(ls -d "$CK"/4.tmp-*) || fail "the killed write left no temporary folder"
C=$(used "$CK/2")
L=$(used "$left")
# Room for checkpoint 4 only once the leftover is gone: C - L/2 free now, C + L/2 without it.
fallocate -l $(($(avail) - C + L / 2)) "$W/disk/filler" || fail "cannot allocate the filler file"
echo "checkpoint: $C bytes, leftover: $L bytes, free: $(avail) bytes"
run 2 four.yaml resumed || { cat resumed.0.log resumed.1.log; fail "resuming next to the leftover failed"; }
grep -qF "removed $CK/$(basename "$left"), left by an interrupted checkpoint write" resumed.0.log ||
  { cat resumed.0.log; fail "no message about the removed leftover"; }
[ "$(cat "$CK/latest.txt")" = 4 ] || fail "latest.txt is not 4"
no_tmp || fail "a temporary folder remains: $(ls "$CK")"
echo "ok 1 - the leftover of a killed write was removed at start; checkpoint 4 fitted"

# ---- 2. ENOSPC: the partial folder is removed, latest.txt stays ---------------------------------
config six 2 6 2 "$CK"
if run 2 six.yaml full; then fail "the run with a full disk exited 0"; fi
grep -q "checkpoint $CK/6 not written: .*No space left on device" full.0.log full.1.log ||
  { cat full.0.log full.1.log; fail "the ENOSPC error does not name the checkpoint and the cause"; }
[ "$(cat "$CK/latest.txt")" = 4 ] || fail "latest.txt moved after a failed write"
[ ! -e "$CK/6" ] || fail "a partial checkpoint 6 was renamed into place"
no_tmp || fail "the failed write left its temporary folder: $(ls "$CK")"
echo "ok 2 - ENOSPC: error names checkpoint 6, partial folder removed, latest.txt stays 4"

# ---- 3. free space, resume -----------------------------------------------------------------------
rm -f "$W/disk/filler"
run 2 six.yaml freed || { cat freed.0.log freed.1.log; fail "resuming after freeing space failed"; }
[ "$(cat "$CK/latest.txt")" = 6 ] || fail "latest.txt is not 6 after resuming"
[ -f "$CK/6/checksums/rank-1-of-2.json" ] || fail "checkpoint 6 incomplete"
no_tmp || fail "a temporary folder remains: $(ls "$CK")"
echo "ok 3 - after freeing space the run resumed and wrote checkpoint 6"
