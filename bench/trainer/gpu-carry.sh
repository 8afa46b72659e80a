#!/usr/bin/env bash
# Run HERE (the Debian build machine), from the repository root, before gpu-bench.sh runs on the
# GPU host: fills build-gpu-carry/ (ignored by git, to be carried with the run) with
#   deps/      yaml-cpp, fmt, nlohmann-json, CLI11 unpacked from Debian packages (offline-debs)
#   corpus/    real English text: the `fortunes` package's cookies and the packages' copyright
#              files of /usr/share/doc (~24 MB), as one gzip'ed tar
#   tokenizers/gpt2   GPT-2's encoder.json + vocab.bpe (from etc/data/tokenizers/gpt2)
#   gtest/     GoogleTest and GoogleMock (libgtest-dev, libgmock-dev), for the gpu tests
#   data/      the corpus prepared once here (STRUN_TRAIN=path to a built strun-train), which the
#              llm.c peer reads while strun-train is still being built there
#   llmc-peer.sh  copied from ../shared/tools
#   src/llm.c, src/cudnn-frontend  source trees for the llm.c peer, filled by hand: fetch
#              github:karpathy/llm.c and github:NVIDIA/cudnn-frontend, then
#              `git --git-dir=<mirror> archive HEAD | tar -x -C build-gpu-carry/src/llm.c`
#              (cudnn-frontend: `archive HEAD include`)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
out=build-gpu-carry
mkdir -p "$out"
if [ ! -d "$out/deps/usr" ]; then
  /work/shared/tools/offline-debs "$out/deps" libyaml-cpp-dev libyaml-cpp0.7 libfmt-dev libfmt9 \
    nlohmann-json3-dev libcli11-dev
fi
if [ ! -f "$out/corpus/english.tar.gz" ]; then
  [ -d /usr/share/games/fortunes ] || { echo "gpu-carry: apt-get install fortunes" >&2; exit 1; }
  tmp=$(mktemp -d)
  mkdir -p "$tmp/english"
  find /usr/share/games/fortunes -maxdepth 1 -type f ! -name '*.*' -exec cp {} "$tmp/english/" \;
  i=0
  while read -r f; do cp "$f" "$tmp/english/copyright-$i.txt"; i=$((i + 1)); done \
    < <(find /usr/share/doc -name copyright -type f | sort)
  mkdir -p "$out/corpus"
  tar -C "$tmp" -czf "$out/corpus/english.tar.gz" english
  rm -rf "$tmp"
fi
if [ ! -f "$out/gtest/usr/lib/x86_64-linux-gnu/libgmock.a" ]; then
  /work/shared/tools/offline-debs "$out/gtest" libgtest-dev libgmock-dev
fi
if [ -f ../shared/tools/llmc-peer.sh ]; then cp ../shared/tools/llmc-peer.sh "$out/"; fi
train=${STRUN_TRAIN:-build/default/trainer/train/strun-train}
if [ ! -f "$out/data/english/default/train.idx" ] && [ -x "$train" ]; then
  tmp=$(mktemp -d)
  tar -C "$tmp" -xzf "$out/corpus/english.tar.gz"
  STRUN_DATA_HOME=$PWD/$out/data "$train" prepare --input "$tmp/english" --output english \
    --format text --sample-by document --quiet
  rm -rf "$tmp"
fi
[ -d "$out/src/llm.c" ] || echo "gpu-carry: no $out/src/llm.c: the llm.c peer will be left out" >&2
mkdir -p "$out/tokenizers/gpt2"
cp etc/data/tokenizers/gpt2/encoder.json etc/data/tokenizers/gpt2/vocab.bpe "$out/tokenizers/gpt2/"
du -sh "$out"/*
echo "carry: build-gpu-carry"
