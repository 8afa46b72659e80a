#!/usr/bin/env bash
# strun-train on one GPU against its peers, in ONE call on the GPU host (see
# /work/shared/notes/gpu-host.md). Run from the repository root after bench/trainer/gpu-carry.sh
# filled build-gpu-carry/ here, with it carried:
#   0. starts karpathy/llm.c's GPT-2 d12 peer in the background (build, then 60 steps) on the
#      carried prepared corpus, while the CPU-only steps 1-2 run; it ends before anything is timed;
#   1. builds strun-train and its gpu tests against PyTorch's libtorch (CUDA, NCCL, the kernels);
#   2. prepares REPEAT copies of the carried English corpus with `strun-train prepare`;
#   3. runs the gpu tests (kernels against the ATen reference, model against fp64 CPU);
#   4. trains the tutorial's 109M Llama (dp 1, tp 1, mbs 64 x seq 512, bf16, AdamW, clip 1.0)
#      for STEPS steps: tokens/s, MFU and peak reserved memory;
#   5. runs the peer, transformers' LlamaForCausalLM of the same shape under torch.compile (pure
#      bf16, fused AdamW, clip 1.0) on the same tokens; prints every ratio;
#   6. NUMERICS_STEPS > 0: the fast path and the ATen reference path (STRUN_TRAIN_OPS=aten, same
#      binary) for that many steps from the same init and data: their loss curves compared;
#   7. TUTORIAL=1: the whole tutorial job (acc 2, 1500 steps, 98.3M tokens, final checkpoint), wall;
#   8. PROFILE=1: Nsight Compute's per-kernel GPU time over 3 steps (clocks as they run, not
#      locked), summed by kernel name;
#   9. export-hf: transformers loads the export and its logits match ours (bf16 tolerance).
# VARIANTS (see step 4) repeats step 4 under other environment settings, for A/B tests.
# Everything it writes is under build-gpu/ (logs in build-gpu/logs/); with $OUT set (the device
# tool sends that folder back, also after a failure) the summary and a tarball of the logs go there.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
STEPS=${STEPS:-60}
NUMERICS_STEPS=${NUMERICS_STEPS:-0}
TUTORIAL=${TUTORIAL:-0}
PROFILE=${PROFILE:-0}
PEERS=${PEERS:-1}  # 0: leave out step 5 (and llm.c)
REPEAT=${REPEAT:-13}  # copies of the 8.2M-token corpus: 13 cover the tutorial's 98.3M tokens
PEAK_TFLOPS=${PEAK_TFLOPS:-989}  # H100 SXM dense bf16
carry=$root/build-gpu-carry
work=$root/build-gpu
mkdir -p "$work"
logs=$work/logs
rm -rf "$logs" && mkdir -p "$logs"
summary=$logs/summary.txt
: >"$summary"
# $OUT (the device tool's return folder, at most 8 files) gets the summary and all logs as one
# tarball, also after a failure.
ship() { if [ -n "${OUT:-}" ]; then cp "$summary" "$OUT/"; tar -C "$logs" -czf "$OUT/logs.tgz" .; fi; }
trap ship EXIT
# sample NAME CMD...: runs CMD while nvidia-smi records SM clock and power every 200 ms; prints
# their medians (is the card throttled?).
sample() {
  local name=$1; shift
  nvidia-smi --query-gpu=clocks.sm,power.draw --format=csv,noheader,nounits -lms 200 \
    >"$logs/clocks-$name.csv" 2>/dev/null &
  local smi=$!
  local rc=0
  "$@" || rc=$?
  kill "$smi" 2>/dev/null || true
  wait "$smi" 2>/dev/null || true
  python3 - "$logs/clocks-$name.csv" "$name" >>"$logs/clocks.txt" <<'PY' || true
import statistics, sys
rows = [l.split(",") for l in open(sys.argv[1]) if l.count(",") == 1]
busy = [(float(c), float(p)) for c, p in rows if float(p) > 200]
if busy:
    print(f"{sys.argv[2]}: median SM clock {statistics.median(c for c, _ in busy):.0f} MHz, median power "
          f"{statistics.median(p for _, p in busy):.0f} W over {len(busy)} samples above 200 W")
PY
  return $rc
}
say() { echo "$*" | tee -a "$summary"; }
# On failure: name the stage and show the log's errors (the whole log is in $logs).
fail() { say "FAILED: $1 (log: $2)"; grep -n -m 60 -E 'error|Error|ERROR|FAILED' "$2" || tail -40 "$2"; exit 1; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

python3 -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "transformers", transformers.__version__)' | tee -a "$summary"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$summary" || true

# ---- 0. llm.c, in the background while nothing is timed ----
llmc_pid=
if [ "$PEERS" = 1 ] && [ -f "$carry/llmc-peer.sh" ] && [ -d "$carry/src/llm.c" ] && [ -f "$carry/data/english/default/train.bin" ]; then
  bash "$carry/llmc-peer.sh" "$carry/src/llm.c" "$carry/src/cudnn-frontend" \
    "$carry/data/english/default/train" 60 >"$logs/llmc.json" 2>"$logs/llmc.log" &
  llmc_pid=$!
fi

# ---- 1. build ----
torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
torch_lib=$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH=$carry/deps/usr/lib/x86_64-linux-gnu:$torch_lib:${LD_LIBRARY_PATH:-}
export PATH=/usr/local/cuda/bin:$PATH
mkdir -p etc/data/tokenizers/gpt2
cp -n "$carry"/tokenizers/gpt2/* etc/data/tokenizers/gpt2/ 2>/dev/null || true
t0=$(date +%s.%N)
# The root project without Slurm, PMIx, the EDF runtime and strund (the host has none of them).
cmake -S . -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSTRUN_WITH_SLURM=OFF -DSTRUN_WITH_EDF=OFF -DSTRUN_WITH_DAEMON=OFF -DSTRUN_FUZZ=OFF \
  -DCMAKE_PREFIX_PATH="$torch_prefix;$carry/deps/usr;$carry/gtest/usr" \
  -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc -DCMAKE_CUDA_ARCHITECTURES=90 \
  >"$logs/cmake.log" 2>&1 || fail cmake "$logs/cmake.log"
# -k 0: every translation unit's errors in one call.
ninja -C "$work/build" -k 0 -j"$(nproc)" strun-train strun_kernels_gpu_test strun_model_gpu_test \
  >"$logs/ninja.log" 2>&1 || fail build "$logs/ninja.log"
bin=$work/build/trainer/train/strun-train
say "build: $(elapsed "$t0") s"

# ---- 2. corpus ----
export STRUN_DATA_HOME=$work/data
if [ ! -f "$STRUN_DATA_HOME/english/default/train.idx" ]; then
  rm -rf "$work/corpus" && mkdir -p "$work/corpus"
  tar -C "$work/corpus" -xzf "$carry/corpus/english.tar.gz"
  for i in $(seq 2 "$REPEAT"); do
    mkdir -p "$work/corpus/english/copy$i"
    find "$work/corpus/english" -maxdepth 1 -type f -exec cp {} "$work/corpus/english/copy$i/" \;
  done
  "$bin" prepare --input "$work/corpus/english" --output english --format text --sample-by document \
    --quiet >"$logs/prepare.log" 2>&1 || fail prepare "$logs/prepare.log"
  tail -1 "$logs/prepare.log" | tee -a "$summary"
fi
split=$STRUN_DATA_HOME/english/default/train
if [ -n "$llmc_pid" ]; then
  wait "$llmc_pid" || say "llm.c peer failed (log: llmc.log): $(tail -3 "$logs/llmc.log")"
fi

# ---- 3. gpu tests ----
ctest --test-dir "$work/build" -L gpu --output-on-failure >"$logs/gpu-tests.log" 2>&1 ||
  say "GPU TESTS FAILED (log: gpu-tests.log)"
grep -E 'tests passed|tests failed|Failed|\*\*\*' "$logs/gpu-tests.log" | tee -a "$summary" || true

# ---- 4. strun-train ----
# config NAME STEPS ACC: the tutorial config on one GPU with the prepared English corpus.
config() {
  sed -e "s/^  dp: 2/  dp: 1/" -e "s/^  tp: 4/  tp: 1/" \
    -e "s/hf_dataset_or_datasets: wikitext/hf_dataset_or_datasets: english/" \
    -e "s/hf_dataset_config_name: wikitext-103-v1/hf_dataset_config_name: null/" \
    -e "s/^  train_steps: 1500/  train_steps: $2/" \
    -e "s/^  checkpoint_interval: 1500/  checkpoint_interval: $2/" \
    -e "s/^  batch_accumulation_per_replica: 1/  batch_accumulation_per_replica: $3/" \
    -e "s#^  checkpoints_path: checkpoints#  checkpoints_path: $work/checkpoints-$1#" \
    -e "s#^  resume_checkpoint_path: checkpoints#  resume_checkpoint_path: null#" \
    -e "s#^  benchmark_csv_path: null#  benchmark_csv_path: $work/$1.csv#" \
    etc/examples/config_tiny_llama_wikitext.yaml >"$work/$1.yaml"
  rm -rf "$work/checkpoints-$1" "$work/$1.csv"
  echo "$work/$1.yaml"
}
# Peak reserved GPU memory (GiB) from the benchmark CSV a run wrote.
mem_res() { python3 -c 'import csv,sys; print(list(csv.DictReader(open(sys.argv[1])))[-1]["Mem Res (GB)"])' "$work/$1.csv"; }
cfg=$(config bench "$STEPS" 1)
sed -i "s/lr_warmup_steps: 150/lr_warmup_steps: 10/" "$cfg"
"$bin" --config-file "$cfg" --check | tail -2 | tee -a "$summary"
t0=$(date +%s.%N)
sample strun-train "$bin" --config-file "$cfg" >"$logs/train.log" 2>&1 || fail train "$logs/train.log"
say "strun-train wall (start-up, $STEPS steps, checkpoint): $(elapsed "$t0") s; $(grep -m1 'Ops:' "$logs/train.log" | sed 's/.*Ops:/ops:/')"
grep 'iteration: ' "$logs/train.log" | awk 'NR <= 3 || NR % 20 == 0' | cut -c1-300 | tee -a "$summary"
ours=$(python3 bench/trainer/parse_iterations.py "$logs/train.log" --skip 5 --mem-res-gib "$(mem_res bench)")
say "strun-train: $ours"
# VARIANTS="name:VAR=value,VAR=value name2:...": the same run again under each environment (A/B
# of library knobs in the same call); tokens/s of each beside the default's.
for variant in ${VARIANTS:-}; do
  vname=${variant%%:*}
  IFS=, read -r -a venv <<<"${variant#*:}"
  cfg=$(config "variant-$vname" "$STEPS" 1)
  sed -i "s/lr_warmup_steps: 150/lr_warmup_steps: 10/" "$cfg"
  env "${venv[@]}" "$bin" --config-file "$cfg" >"$logs/variant-$vname.log" 2>&1 ||
    { say "variant $vname failed (log: variant-$vname.log)"; continue; }
  say "variant $vname (${venv[*]}): $(python3 bench/trainer/parse_iterations.py "$logs/variant-$vname.log" --skip 5 --mem-res-gib "$(mem_res "variant-$vname")")"
done

# ---- 5. the peers ----
if [ "$PEERS" = 1 ]; then
sample transformers python3 bench/trainer/hf_peer.py --data "$split" --steps "$STEPS" --warmup 5 \
  >"$logs/peer.json" 2>"$logs/peer.log" || fail peer "$logs/peer.log"
peer=$(tail -1 "$logs/peer.json")
say "transformers+torch.compile: $peer"
llmc=$(tail -1 "$logs/llmc.json" 2>/dev/null || true)
say "llm.c: ${llmc:-not run}"
python3 - "$ours" "$peer" "${llmc:-{\}}" "$PEAK_TFLOPS" <<'PY' | tee -a "$summary"
import json, sys
o, p, l, peak = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3]), float(sys.argv[4])
print(f"tokens/s: strun-train {o['tokens_per_sec']:.0f} | transformers+torch.compile {p['tokens_per_sec']:.0f}"
      f" -> ratio {o['tokens_per_sec'] / p['tokens_per_sec']:.3f} (target >= 1.35)")
if l.get("tokens_per_sec"):
    print(f"tokens/s: llm.c GPT-2 d12 {l['tokens_per_sec']:.0f} -> ratio {o['tokens_per_sec'] / l['tokens_per_sec']:.3f}"
          f" (target >= 1.1); llm.c's own MFU {l['llmc_mfu_percent']:.1f}%")
print(f"MFU (nanotron FLOPs, peak {peak:.0f} TFLOP/s): strun-train {o['model_tflops'] / peak:.1%}"
      f", transformers {p['model_tflops'] / peak:.1%}")
print(f"peak reserved GPU memory: strun-train {o['mem_res_gib']:.1f} GiB, transformers "
      f"{p['max_reserved_gib']:.1f} GiB (allocated {p['max_memory_gib']:.1f})")
PY
cat "$logs/clocks.txt" 2>/dev/null | tee -a "$summary" || true
fi

# ---- 7. the whole tutorial job ----
if [ "$TUTORIAL" = 1 ]; then
  cfg=$(config tutorial 1500 2)
  t0=$(date +%s.%N)
  "$bin" --config-file "$cfg" >"$logs/tutorial.log" 2>&1 || fail tutorial "$logs/tutorial.log"
  say "tutorial job (dp1 tp1 acc 2, 1500 steps, $(grep -o 'consumed_tokens: [^ |]*' "$logs/tutorial.log" | tail -1), checkpoint): wall $(elapsed "$t0") s"
  grep 'iteration: 1500 ' "$logs/tutorial.log" | cut -c1-300 | tee -a "$summary"
  say "tutorial: $(python3 bench/trainer/parse_iterations.py "$logs/tutorial.log" --skip 5 --mem-res-gib "$(mem_res tutorial)")"
fi

# ---- 6. numerics: fast path against the ATen reference path ----
if [ "$NUMERICS_STEPS" -gt 0 ]; then
  for ops in cuda aten; do
    cfg=$(config "numerics-$ops" "$NUMERICS_STEPS" 1)
    sed -i -e "s/^  log_level: info/  log_level: debug/" "$cfg"
    t0=$(date +%s.%N)
    env $([ "$ops" = aten ] && echo STRUN_TRAIN_OPS=aten) "$bin" --config-file "$cfg" \
      >"$logs/numerics-$ops.log" 2>&1 || fail "numerics $ops" "$logs/numerics-$ops.log"
    say "numerics $ops: $NUMERICS_STEPS steps in $(elapsed "$t0") s: $(python3 bench/trainer/parse_iterations.py "$logs/numerics-$ops.log" --skip 5 --mem-res-gib "$(mem_res "numerics-$ops")")"
  done
  python3 bench/trainer/compare_losses.py "$logs/numerics-cuda.log" "$logs/numerics-aten.log" --last 50 | tee -a "$summary"
fi

# ---- 8. per-kernel profile ----
if [ "$PROFILE" = 1 ] && command -v ncu >/dev/null; then
  cfg=$(config profile 3 1)
  timeout 240 ncu --clock-control none --metrics gpu__time_duration.sum --csv --log-file "$logs/ncu.csv" "$bin" --config-file "$cfg" \
    >"$logs/profile-train.log" 2>&1 || say "ncu failed (log: profile-train.log)"
  python3 bench/trainer/kernel_table.py "$logs/ncu.csv" --steps 3 | tee "$logs/profile.txt" | head -40 | tee -a "$summary"
fi

# ---- 9. export-hf against transformers ----
"$bin" export-hf --checkpoint "$work/checkpoints-bench" --output "$work/hf_export" 2>&1 | tee -a "$summary"
python3 bench/trainer/check_export.py --bin "$bin" --checkpoint "$work/checkpoints-bench" \
  --export "$work/hf_export" --work "$work" 2>&1 | tee -a "$summary"
