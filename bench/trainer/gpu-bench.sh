#!/usr/bin/env bash
# strun-train on one GPU against Hugging Face transformers, in ONE call on the GPU host (see
# /work/shared/notes/gpu-host.md). Run from the repository root after bench/trainer/gpu-carry.sh
# filled build-gpu-carry/ here and with it carried:
#   1. builds strun-train against PyTorch's libtorch (CUDA, NCCL) and the carried libraries;
#   2. prepares the carried English corpus with `strun-train prepare`;
#   3. trains the tutorial's 109M Llama (dp 1, tp 1, mbs 64 x seq 512, bf16, AdamW, clip 1.0) for
#      STEPS steps: tokens/s and MFU from its nanotron iteration lines;
#   4. runs the peer, transformers' LlamaForCausalLM of the same shape under torch.compile
#      (pure bf16, fused AdamW, clip 1.0) on the same tokens: tokens/s, MFU, and the ratio;
#   5. export-hf: transformers loads the export and its logits match ours (bf16 tolerance).
# Everything it writes is under build-gpu/; its logs go to $OUT when set (the device tool sends
# that folder back, also after a failure), else to build-gpu/logs/.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
STEPS=${STEPS:-60}
PEAK_TFLOPS=${PEAK_TFLOPS:-989}  # H100 SXM dense bf16
carry=$root/build-gpu-carry
work=$root/build-gpu
mkdir -p "$work"
logs=${OUT:-$work/logs}
mkdir -p "$logs"
summary=$logs/summary.txt
: >"$summary"
say() { echo "$*" | tee -a "$summary"; }
# On failure: name the stage and show the log's errors (the whole log is in $logs).
fail() { say "FAILED: $1 (log: $2)"; grep -n -m 60 -E 'error|Error|ERROR' "$2" || tail -40 "$2"; exit 1; }

python3 -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "transformers", transformers.__version__)' | tee -a "$summary"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$summary" || true

# ---- 1. build ----
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
torch_lib=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH=$carry/deps/usr/lib/x86_64-linux-gnu:$torch_lib:${LD_LIBRARY_PATH:-}
export PATH=/usr/local/cuda/bin:$PATH
mkdir -p etc/data/tokenizers/gpt2
cp -n "$carry"/tokenizers/gpt2/* etc/data/tokenizers/gpt2/ 2>/dev/null || true
t0=$(date +%s.%N)
cmake -S bench/trainer/gpu-build -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$carry/deps/usr" -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc \
  -DCMAKE_CUDA_ARCHITECTURES=90 >"$logs/cmake.log" 2>&1 || fail cmake "$logs/cmake.log"
# -k 0: every translation unit's errors in one call.
ninja -C "$work/build" -k 0 -j"$(nproc)" strun-train >"$logs/ninja.log" 2>&1 || fail build "$logs/ninja.log"
bin=$work/build/trainer/train/strun-train
say "build: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f", b-a}') s"

# ---- 2. corpus ----
export STRUN_DATA_HOME=$work/data
if [ ! -f "$STRUN_DATA_HOME/english/default/train.idx" ]; then
  rm -rf "$work/corpus" && mkdir -p "$work/corpus"
  tar -C "$work/corpus" -xzf "$carry/corpus/english.tar.gz"
  "$bin" prepare --input "$work/corpus/english" --output english --format text --sample-by document \
    --quiet >"$logs/prepare.log" 2>&1 || fail prepare "$logs/prepare.log"
  tail -3 "$logs/prepare.log" | tee -a "$summary"
fi

# ---- 3. strun-train ----
cfg=$work/tutorial_dp1.yaml
sed -e "s/^  dp: 2/  dp: 1/" -e "s/^  tp: 4/  tp: 1/" \
    -e "s/hf_dataset_or_datasets: wikitext/hf_dataset_or_datasets: english/" \
    -e "s/hf_dataset_config_name: wikitext-103-v1/hf_dataset_config_name: null/" \
    -e "s/^  train_steps: 1500/  train_steps: $STEPS/" \
    -e "s/^  checkpoint_interval: 1500/  checkpoint_interval: $STEPS/" \
    -e "s#^  checkpoints_path: checkpoints#  checkpoints_path: $work/checkpoints#" \
    -e "s#^  resume_checkpoint_path: checkpoints#  resume_checkpoint_path: null#" \
    -e "s/lr_warmup_steps: 150/lr_warmup_steps: 10/" \
    etc/examples/config_tiny_llama_wikitext.yaml >"$cfg"
rm -rf "$work/checkpoints"
"$bin" --config-file "$cfg" --check | tail -2 | tee -a "$summary"
t0=$(date +%s.%N)
"$bin" --config-file "$cfg" >"$logs/train.log" 2>&1 || fail train "$logs/train.log"
say "strun-train wall (start-up, $STEPS steps, checkpoint): $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
# Steps 1-3, every 10th and the last (once).
grep 'iteration: ' "$logs/train.log" | awk 'NR <= 3 || NR % 10 == 0 { print; next } { last = $0 }
  END { if (NR > 3 && NR % 10 != 0) print last }' | tee -a "$summary"
ours=$(python3 bench/trainer/parse_iterations.py "$logs/train.log" --skip 5)
say "strun-train: $ours"

# ---- 4. the peer ----
peer=$(python3 bench/trainer/hf_peer.py --data "$STRUN_DATA_HOME/english/default/train" --steps "$STEPS" \
  --warmup 5 2>"$logs/peer.log") || fail peer "$logs/peer.log"
say "transformers+torch.compile: $peer"
python3 - "$ours" "$peer" "$PEAK_TFLOPS" <<'PY' | tee -a "$summary"
import json, sys
o, p, peak = json.loads(sys.argv[1]), json.loads(sys.argv[2]), float(sys.argv[3])
print(f"tokens/s: strun-train {o['tokens_per_sec']:.0f} vs transformers {p['tokens_per_sec']:.0f}"
      f" -> ratio {o['tokens_per_sec'] / p['tokens_per_sec']:.3f}")
print(f"MFU (peak {peak:.0f} TFLOP/s): strun-train {o['model_tflops'] / peak:.1%}"
      f", transformers {p['model_tflops'] / peak:.1%}")
PY

# ---- 5. export-hf against transformers ----
"$bin" export-hf --checkpoint "$work/checkpoints" --output "$work/hf_export" 2>&1 | tee -a "$summary"
python3 bench/trainer/check_export.py --bin "$bin" --checkpoint "$work/checkpoints" \
  --export "$work/hf_export" --work "$work" 2>&1 | tee -a "$summary"
