#!/usr/bin/env bash
# Fails when a tracked C++ or CUDA source differs from the repository's .clang-format, and names
# each such file with the first lines of the change clang-format would make. Fix with
#   git ls-files '*.cc' '*.h' '*.cu' '*.cuh' | xargs clang-format-14 -i
# clang-format-14 is pinned: another version formats some constructs differently.
set -euo pipefail
root=${1:?usage: check_format.sh REPOSITORY_ROOT}
cd "$root"
fmt=$(command -v clang-format-14 || true)
if [ -z "$fmt" ]; then
  echo "check_format: clang-format-14 is not installed (etc/setup/install-deps.sh installs it)" >&2
  exit 1
fi
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.cc' '*.h' '*.cu' '*.cuh')
else
  # A source tree without git (an unpacked release): every source outside build folders.
  mapfile -t files < <(find . -path ./build -prune -o -path './build-*' -prune -o -type f \
    \( -name '*.cc' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) -print | sed 's|^\./||' | sort)
fi
bad=0
for f in "${files[@]}"; do
  [ -f "$f" ] || continue  # deleted in the work tree, not yet in the index
  if ! diff -q "$f" <("$fmt" --style=file "$f") >/dev/null; then
    echo "not formatted: $f"
    diff -u "$f" <("$fmt" --style=file "$f") | sed -n '3,12p' || true
    bad=$((bad + 1))
  fi
done
echo "check_format: ${#files[@]} files, $bad not formatted"
[ "$bad" = 0 ]
