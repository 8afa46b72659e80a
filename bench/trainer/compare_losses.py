"""Loss curves of two strun-train runs (log_level: debug, `step N lm_loss X` lines) compared step by
step: the fast path against the ATen reference path from the same init and data.

usage: compare_losses.py FAST_LOG REFERENCE_LOG [--last N]
Prints one JSON line: steps compared, mean and max |diff| over the last N steps and over all, the
mean loss of those steps, and the reference's own step-to-step noise there (the standard deviation
of its loss minus a 5-step moving average), the scale "bf16 noise" is judged against.
"""
import argparse, json, re, statistics

ap = argparse.ArgumentParser()
ap.add_argument("fast")
ap.add_argument("reference")
ap.add_argument("--last", type=int, default=50)
a = ap.parse_args()


def losses(path):
    out = {}
    for line in open(path):
        m = re.search(r"step (\d+) lm_loss (\S+)", line)
        if m:
            out[int(m.group(1))] = float(m.group(2))
    return out


f, r = losses(a.fast), losses(a.reference)
steps = sorted(set(f) & set(r))
if not steps:
    raise SystemExit("compare_losses: no common steps")
last = steps[-a.last:]
diff = [abs(f[s] - r[s]) for s in steps]
diff_last = [abs(f[s] - r[s]) for s in last]
ref_last = [r[s] for s in last]
smooth = [statistics.mean(r[t] for t in steps if abs(t - s) <= 2) for s in last]
noise = statistics.pstdev([x - y for x, y in zip(ref_last, smooth)])
print(json.dumps({
    "steps": len(steps), "last": len(last),
    "mean_abs_diff_last": statistics.mean(diff_last), "max_abs_diff_last": max(diff_last),
    "mean_abs_diff_all": statistics.mean(diff), "max_abs_diff_all": max(diff),
    "mean_loss_last_fast": statistics.mean(f[s] for s in last),
    "mean_loss_last_reference": statistics.mean(ref_last),
    "reference_step_noise_last": noise,
    "first_step_loss": [f[steps[0]], r[steps[0]]], "final_loss": [f[steps[-1]], r[steps[-1]]],
}))
