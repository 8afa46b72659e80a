"""Median throughput of strun-train's (nanotron's) iteration lines, as JSON.

usage: parse_iterations.py TRAIN_LOG [--skip N] [--mem-res-gib X]
(N: first steps left out as warm-up; X: peak reserved GPU memory, passed through into the JSON)
"""
import argparse, json, re, statistics

SUFFIX = {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}


def human(v):
    m = re.fullmatch(r"(-?[0-9.e+-]+)([KMGTPE]?)", v)
    return float(m.group(1)) * SUFFIX[m.group(2)]


ap = argparse.ArgumentParser()
ap.add_argument("log")
ap.add_argument("--skip", type=int, default=5)
ap.add_argument("--mem-res-gib", type=float, default=None)
a = ap.parse_args()
rows = []
for line in open(a.log):
    m = re.search(r"iteration: (\d+) / \d+ \| (.*)", line)
    if not m:
        continue
    fields = dict(kv.split(": ", 1) for kv in m.group(2).split(" | "))
    rows.append((int(m.group(1)), {k: human(v.strip()) for k, v in fields.items()}))
steady = [r for s, r in rows if s > a.skip] or [r for _, r in rows]
print(json.dumps({
    "steps_measured": len(steady),
    "tokens_per_sec": statistics.median(r["tokens_per_sec"] for r in steady),
    "model_tflops": statistics.median(r["model_tflops_per_gpu"] for r in steady),
    "elapsed_ms": statistics.median(r["elapsed_time_per_iteration_ms"] for r in steady),
    "last_lm_loss": rows[-1][1]["lm_loss"],
    "mem_res_gib": a.mem_res_gib,
}))
