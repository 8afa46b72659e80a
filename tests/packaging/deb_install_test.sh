#!/usr/bin/env bash
# The Debian packages of etc/packaging, as an admin uses them: CPack packages the binaries of this
# build tree (it does not build), dpkg installs both packages on this machine while a 2-node local
# Slurm cluster (tests/cluster) runs with a plugstack.conf that includes the packaged
# /etc/slurm/plugstack.conf.d/strun.conf; without restarting any daemon, `srun --environment` must
# run a step in a squashfs image made by the installed strun-edf, and the installed strun must
# launch 4 workers on 2 nodes under PMIx. `dpkg -r` must leave only the conffile, with which srun
# and a restarted slurmd still work; `dpkg --purge` must leave nothing of the packages.
# Usage: deb_install_test.sh BUILD_DIR SOURCE_DIR. Exit 77 (skipped) without root, Slurm, dpkg or
# /dev/fuse.
set -euo pipefail
build=$1
src=$2
cluster=$src/tests/cluster/slurm-cluster.sh

skip() { echo "skipped: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
step() { echo "== $*"; }

[ "$(id -u)" = 0 ] || skip "needs root: it installs the packages on this machine with dpkg -i and removes them"
for tool in dpkg dpkg-deb cpack slurmctld slurmd srun mksquashfs squashfuse; do
  command -v "$tool" >/dev/null || skip "'$tool' not found (etc/setup/install-deps.sh installs it)"
done
[ -r /dev/fuse ] && [ -w /dev/fuse ] || skip "needs /dev/fuse (squashfuse mounts the container image)"
[ -f "$build/CPackConfig.cmake" ] || fail "no $build/CPackConfig.cmake: configure the build again (cmake --preset default)"

# One run at a time on this machine, also across ctest invocations (RESOURCE_LOCK is per ctest).
exec 8>/var/tmp/strun-deb-test.lock
flock -w 300 8 || fail "another deb_install_test.sh still holds /var/tmp/strun-deb-test.lock after 300 s"
# A run that was killed (ctest's timeout) leaves the packages installed and this marker: remove them.
marker=/var/tmp/strun-deb-test.installed
if [ -f "$marker" ]; then
  echo "removing the packages that an interrupted earlier run left installed"
  dpkg --purge strun-train strun >/dev/null || true
  rm -f "$marker"
fi
for pkg in strun strun-train; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  case "$status" in
    "" | *not-installed) ;;
    *) fail "package $pkg is on this machine ($status), not installed by this test: the test would replace and remove it; remove it first (dpkg --purge strun-train strun)" ;;
  esac
done

# Not under /tmp: every node of the cluster has a private /tmp.
work=$(mktemp -d /var/tmp/strun-deb-test.XXXXXX)
chmod 755 "$work"
cluster_id=""
cleanup() {
  local rc=$?
  if [ -n "$cluster_id" ]; then "$cluster" stop --id "$cluster_id" 2>/dev/null || true; fi
  if [ -f "$marker" ]; then
    dpkg --purge strun-train strun >/dev/null 2>&1 || echo "warning: dpkg --purge strun-train strun failed; remove them by hand"
    rm -f "$marker"
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "cpack --config $build/CPackConfig.cmake"
cpack --config "$build/CPackConfig.cmake" -B "$work/deb" >"$work/cpack.log" 2>&1 || {
  cat "$work/cpack.log"
  fail "cpack could not package $build (are strun, strund, strun-hostlist, strun-edf, spank_strun and strun-train built?)"
}
debs=("$work"/deb/strun_*.deb "$work"/deb/strun-train_*.deb)
for deb in "${debs[@]}"; do [ -f "$deb" ] || fail "cpack wrote no $deb (see $work/deb)"; done

# Every path of the packages; none may exist yet (dpkg would overwrite it, and removal delete it).
# tar lists directories with a trailing slash.
listing=$(for deb in "${debs[@]}"; do dpkg-deb --fsys-tarfile "$deb" | tar -t; done | sed 's|^\./|/|' | grep -vx '/' | sort -u)
files=() new_dirs=()
while read -r p; do
  case "$p" in
    */) [ -d "$p" ] || new_dirs+=("${p%/}") ;;
    *)
      [ -e "$p" ] && fail "$p exists already, not from these packages: installing would overwrite it and removing would delete it; move it away first"
      files+=("$p")
      ;;
  esac
done <<<"$listing"
for f in /usr/bin/strun /usr/bin/strund /usr/bin/strun-hostlist /usr/bin/strun-edf /usr/bin/strun-train \
  /usr/lib/x86_64-linux-gnu/slurm-wlm/spank_strun.so /etc/slurm/plugstack.conf.d/strun.conf \
  /usr/share/strun/plugstack.conf /usr/share/doc/strun/examples/slurm/torch-distributed.sbatch \
  /usr/share/doc/strun/examples/edf/ngc-nanotron-24.04.toml; do
  printf '%s\n' "${files[@]}" | grep -qx "$f" || fail "the packages do not install $f"
done

# The cluster reads the packaged conffile, which does not exist yet (a missing include is no error).
step "start a 2-node cluster whose plugstack.conf includes /etc/slurm/plugstack.conf.d/strun.conf"
echo "include /etc/slurm/plugstack.conf.d/strun.conf" >"$work/plugstack.conf"
env_lines=$("$cluster" start --nodes 2 --owner-pid $$ --plugstack "$work/plugstack.conf" 8>&-)  # the daemons outlive us
eval "$env_lines"
cluster_id=$STRUN_CLUSTER_ID
if srun --help 2>&1 | grep -q -- '--environment'; then
  fail "srun knows --environment before the packages are installed: another plugin is in $work/plugstack.conf?"
fi

step "dpkg -i ${debs[*]##*/}"
touch "$marker"
dpkg -i "${debs[@]}" || fail "dpkg -i failed: a Depends of the packages is not installed (etc/setup/install-deps.sh installs them all)"
for pkg in strun strun-train; do
  [ "$(dpkg-query -W -f='${Status}' "$pkg")" = "install ok installed" ] || fail "$pkg is not configured: $(dpkg-query -W -f='${Status}' "$pkg")"
done
dpkg-query -W -f='${Conffiles}\n' strun | grep -q '^ /etc/slurm/plugstack.conf.d/strun.conf ' ||
  fail "/etc/slurm/plugstack.conf.d/strun.conf is not a conffile of strun"
for f in /usr/bin/strun /usr/bin/strund /usr/bin/strun-hostlist /usr/bin/strun-edf /usr/bin/strun-train \
  /usr/lib/x86_64-linux-gnu/slurm-wlm/spank_strun.so; do
  if missing=$(ldd "$f" | grep 'not found'); then fail "$f: libraries not found: $missing"; fi
done
/usr/bin/strund --help >/dev/null || fail "strund --help failed"
/usr/bin/strun-train --help >/dev/null || fail "strun-train --help failed"
hosts=$(/usr/bin/strun-hostlist expand 'nid[001-002]' | tr '\n' ' ')
[ "$hosts" = "nid001 nid002 " ] || fail "strun-hostlist expand 'nid[001-002]' printed '$hosts'"

step "srun --environment with the installed plugin (no daemon restarted)"
srun --help 2>&1 | grep -q -- '--environment=EDF' || fail "srun --help has no --environment: the installed plugin was not loaded"
"$src/tests/edf/make-test-rootfs.sh" "$work/rootfs"
/usr/bin/strun-edf import "$work/rootfs" -o "$work/image.sqsh" >/dev/null || fail "strun-edf import of $work/rootfs failed"
chmod 644 "$work/image.sqsh"
printf 'image = "./image.sqsh"\n[env]\nFROM_EDF = "set-by-the-edf"\n' >"$work/test.toml"
out=$(cd "$work" && timeout 120 srun -N2 --ntasks-per-node=1 --environment=./test.toml \
  sh -c 'echo "task $SLURM_PROCID on $SLURMD_NODENAME: $(cat /hello.txt) $FROM_EDF"' 2>&1) || {
  echo "$out"
  fail "srun --environment failed"
}
echo "$out"
for t in "task 0 on nid001" "task 1 on nid002"; do
  grep -qx "$t: hello from the image set-by-the-edf" <<<"$out" || fail "no '$t: hello from the image set-by-the-edf' line: the step did not run in the container"
done

step "srun --mpi=pmix /usr/bin/strun --nproc-per-node=2 on 2 nodes"
out=$(timeout 120 srun -N2 --ntasks-per-node=1 --mpi=pmix --kill-on-bad-exit=1 /usr/bin/strun --nproc-per-node=2 --no-python \
  sh -c 'echo "rank $RANK of $WORLD_SIZE local $LOCAL_RANK"' 2>&1) || {
  echo "$out"
  fail "the launch of the installed strun failed"
}
echo "$out"
for r in 0 1 2 3; do
  grep -q "rank $r of 4 local $((r % 2))\$" <<<"$out" || fail "no worker of rank $r of 4"
done

step "dpkg -r strun-train strun: only the conffile stays, and Slurm keeps working with it"
dpkg -r strun-train strun >/dev/null || fail "dpkg -r strun-train strun failed"
[ "$(dpkg-query -W -f='${Status}' strun)" = "deinstall ok config-files" ] || fail "strun after dpkg -r: $(dpkg-query -W -f='${Status}' strun)"
for f in "${files[@]}"; do
  [ "$f" = /etc/slurm/plugstack.conf.d/strun.conf ] && continue
  [ ! -e "$f" ] || fail "$f is still there after dpkg -r"
done
[ -f /etc/slurm/plugstack.conf.d/strun.conf ] || fail "dpkg -r removed the conffile (only --purge should)"
if srun --help 2>&1 | grep -q -- '--environment'; then fail "srun still has --environment after dpkg -r"; fi
timeout 60 srun -N2 true || fail "srun fails with the conffile that dpkg -r leaves"
"$cluster" kill-node nid002 --id "$cluster_id" 2>/dev/null
"$cluster" restart-node nid002 --id "$cluster_id" 2>/dev/null 8>&-
timeout 60 srun -N1 -w nid002 true || fail "a slurmd started with the conffile that dpkg -r leaves does not run steps: $(tail -n 5 "$STRUN_CLUSTER_DIR"/log/slurmd-nid002.log)"

step "dpkg --purge strun-train strun: nothing stays"
dpkg --purge strun-train strun >/dev/null || fail "dpkg --purge strun-train strun failed"
rm -f "$marker"
for pkg in strun strun-train; do
  if dpkg -L "$pkg" >/dev/null 2>&1; then fail "dpkg still lists files of $pkg: $(dpkg -L "$pkg" | head)"; fi
done
for p in "${files[@]}" "${new_dirs[@]}"; do
  [ ! -e "$p" ] || fail "$p is still there after dpkg --purge"
done
echo "PASS"
