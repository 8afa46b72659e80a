#!/usr/bin/env bash
# Builds the Debian packages strun and strun-train (etc/packaging/CMakeLists.txt says what each
# holds) from a Release build of this checkout, and writes them to OUTDIR.
#
#   etc/packaging/make-deb.sh OUTDIR [BUILD_DIR]
#
# BUILD_DIR (default build/package) is configured for the install prefix /usr, without tests, and
# built with all cores (JOBS=N to change). Needs the build dependencies (etc/setup/install-deps.sh)
# and dpkg-shlibdeps (dpkg-dev), which derives the library dependencies from the binaries: build on
# the Debian release (and Slurm release) the cluster runs. Install with
#   dpkg -i OUTDIR/strun_*.deb OUTDIR/strun-train_*.deb
# on every node and login node (README.md, "Installing on a cluster").
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)

die() { echo "make-deb: $*" >&2; exit 1; }
[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: $0 OUTDIR [BUILD_DIR]"
out=$1
build=${2:-$root/build/package}
for tool in cmake cpack ninja dpkg-deb dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || die "'$tool' not found: run etc/setup/install-deps.sh (dpkg-shlibdeps is in dpkg-dev)"
done

# strun-train finds the GPT-2 tokenizer in /usr/share/strun/tokenizers (fetched, not in git).
if [ ! -f "$root/etc/data/tokenizers/gpt2/encoder.json" ]; then
  "$root/etc/setup/fetch-tokenizer.sh" || die "no tokenizer files in etc/data/tokenizers/gpt2: run etc/setup/fetch-tokenizer.sh"
fi

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
  -DSTRUN_BUILD_TESTS=OFF -DSTRUN_FUZZ=OFF >/dev/null
# A build dir configured earlier with another prefix keeps its cached data directory.
grep -qx 'STRUN_DATA_DIR:PATH=/usr/share/strun' "$build/CMakeCache.txt" ||
  die "$build was configured with another STRUN_DATA_DIR (see its CMakeCache.txt): remove $build or pass another BUILD_DIR"
cmake --build "$build" -j"${JOBS:-$(nproc)}"

mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/strun_*.deb "$out"/strun-train_*.deb
cpack --config "$build/CPackConfig.cmake" -B "$out" >/dev/null || die "cpack failed (run: cpack --config $build/CPackConfig.cmake -B $out)"
rm -rf "$out/_CPack_Packages"

for pkg in strun strun-train; do
  debs=("$out/${pkg}"_*.deb)
  [ -f "${debs[0]}" ] || die "cpack wrote no package $pkg to $out (is STRUN_WITH_TRAINER off?)"
  echo "${debs[0]}"
done
# What an admin relies on: the plugin where slurmd looks, the plugstack line, the tokenizer.
contents=$(dpkg-deb -c "$out"/strun_*.deb; dpkg-deb -c "$out"/strun-train_*.deb)
for f in ./usr/bin/strun ./etc/slurm/plugstack.conf.d/strun.conf /spank_strun.so ./usr/bin/strun-train \
  ./usr/share/strun/tokenizers/gpt2/vocab.bpe; do
  grep -qF "$f" <<<"$contents" || die "the packages lack $f (see dpkg-deb -c $out/*.deb)"
done
