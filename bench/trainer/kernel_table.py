"""Nsight Compute's per-kernel GPU time (`ncu --metrics gpu__time_duration.sum --csv`) summed by
kernel name: ms per training step and launches per step, largest first, then a total.

usage: kernel_table.py NCU_CSV --steps N
"""
import argparse, collections, csv, io

ap = argparse.ArgumentParser()
ap.add_argument("csv")
ap.add_argument("--steps", type=int, required=True)
a = ap.parse_args()
text = open(a.csv).read()
start = text.find('"ID"')
rows = csv.DictReader(io.StringIO(text[start:] if start >= 0 else text))
time_ns, count = collections.Counter(), collections.Counter()
for row in rows:
    if row.get("Metric Name") != "gpu__time_duration.sum":
        continue
    value = float(row["Metric Value"].replace(",", ""))
    scale = {"nsecond": 1, "usecond": 1e3, "msecond": 1e6, "second": 1e9}.get(row.get("Metric Unit", "nsecond"), 1)
    name = row["Kernel Name"][:110]
    time_ns[name] += value * scale
    count[name] += 1
total = sum(time_ns.values())
print(f"{'ms/step':>8} {'launch/step':>11}  kernel (all {a.steps} steps incl. start-up, per step)")
for name, ns in time_ns.most_common():
    print(f"{ns / 1e6 / a.steps:8.2f} {count[name] / a.steps:11.1f}  {name}")
print(f"{total / 1e6 / a.steps:8.2f} {sum(count.values()) / a.steps:11.1f}  TOTAL")
