"""strun against torchrun, in the same run on the same machine (issue 2, section 4).

  /usr/bin/python3 bench/launcher/bench.py --strun build/release/launcher/strun [--repeat 3]

Measures, for each launcher, with `--standalone` (no Slurm) and the same workers:
  start-up   wall time to run N no-op workers to completion (N = 2 and 8), with two kinds of
             worker: `--no-python /bin/true` (the launcher alone) and a python3 script that does
             nothing (what a user sees: the launcher plus the interpreter's start);
  restart    time from one worker's failure (it logs the time, then exits 1) to the start of the
             last replacement worker (each logs its start), with --max-restarts=1.
It prints the medians and the ratio torchrun/strun; absolute times hold for this machine only
(its description is printed with them).

The peer is Debian's torchrun (PyTorch 1.13) through torchrun_py311.py, which fixes its crash on
Python 3.11, with underscore flags. Its --monitor_interval is set to 0.1 s, the default of
PyTorch 2.x (1.13's default of 5 s would add up to 5 s to every restart).
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"  # Debian's, with torch


def clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "PMIX_", "PMI_", "PET_"))}
    env["STRUN_PYTHON"] = PYTHON
    return env


def launcher_cmd(which, strun, nproc, extra):
    if which == "strun":
        return [strun, "--standalone", f"--nproc-per-node={nproc}"] + extra
    flags = [f.replace("--no-python", "--no_python").replace("--max-restarts", "--max_restarts") for f in extra]
    return [PYTHON, os.path.join(HERE, "torchrun_py311.py"), "--standalone", f"--nproc_per_node={nproc}",
            "--monitor_interval=0.1"] + flags


def run(cmd, env, timeout=300):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout)
    elapsed = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stderr.decode()[-2000:]}")
    return elapsed


def startup(which, strun, nproc, worker, noop_py):
    extra = ["--no-python", "/bin/true"] if worker == "true" else [noop_py]
    return run(launcher_cmd(which, strun, nproc, extra), clean_env())


def restart(which, strun, nproc):
    with tempfile.TemporaryDirectory(prefix="strun-bench-") as d:
        log = os.path.join(d, "events")
        env = clean_env()
        env.update(BENCH_LOG=log, FAIL_RANK=str(nproc - 1))
        extra = ["--max-restarts=1", "--no-python", os.path.join(HERE, "restart_worker.sh")]
        run(launcher_cmd(which, strun, nproc, extra), env)
        fail, starts = None, []
        for line in open(log):
            kind, attempt, _rank, ns = line.split()
            if kind == "fail":
                fail = int(ns)
            elif kind == "start" and attempt == "1":
                starts.append(int(ns))
        if fail is None or len(starts) != nproc:
            raise RuntimeError(f"{which}: expected one failure and {nproc} restarted workers, log:\n{open(log).read()}")
        return (max(starts) - fail) / 1e9


def machine():
    cpu = "unknown cpu"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}: {os.cpu_count()} CPUs ({cpu}), load average {os.getloadavg()[0]:.1f}, Python {platform.python_version()}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--strun", required=True, help="the strun executable")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (median reported)")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    strun = os.path.abspath(args.strun)

    print(f"machine: {machine()}")
    results = []
    with tempfile.TemporaryDirectory(prefix="strun-bench-") as d:
        noop_py = os.path.join(d, "noop.py")
        open(noop_py, "w").write("pass\n")
        cases = [(f"start-up, {n} workers, /bin/true", lambda w, n=n: startup(w, strun, n, "true", noop_py)) for n in (2, 8)]
        cases += [(f"start-up, {n} workers, python noop.py", lambda w, n=n: startup(w, strun, n, "py", noop_py)) for n in (2, 8)]
        cases += [(f"restart, {n} workers: failure -> last new worker", lambda w, n=n: restart(w, strun, n)) for n in (2, 8)]
        print(f"{'measurement':48} {'strun [s]':>10} {'torchrun [s]':>13} {'torchrun/strun':>15}")
        for name, fn in cases:
            times = {}
            # Interleaved, so that a change in the machine's load hits both launchers alike.
            samples = {"strun": [], "torchrun": []}
            for _ in range(args.repeat):
                for which in ("strun", "torchrun"):
                    samples[which].append(fn(which))
            for which in samples:
                times[which] = statistics.median(samples[which])
            ratio = times["torchrun"] / times["strun"]
            print(f"{name:48} {times['strun']:10.3f} {times['torchrun']:13.3f} {ratio:14.1f}x", flush=True)
            results.append({"measurement": name, "strun_s": samples["strun"], "torchrun_s": samples["torchrun"],
                            "strun_median_s": times["strun"], "torchrun_median_s": times["torchrun"], "ratio": ratio})
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "results": results}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
