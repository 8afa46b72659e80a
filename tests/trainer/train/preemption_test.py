#!/usr/bin/python3
"""Integration test of strun-train's progress reports and pre-emption (2 DP ranks on CPU, gloo).

Each rank gets its own SOCK_SEQPACKET socket pair in STRUN_PROGRESS_FD, as strun's agent gives
it, so the test needs no launcher:
  1. an uninterrupted run reports startup, training 1..N in order and checkpoint before each
     checkpoint write;
  2. SIGUSR1 to rank 1 (SIGTERM to rank 0) at step k: both ranks checkpoint the same step m > k,
     report preempted m, exit 0, latest.txt = m; resuming finishes with the losses and checkpoint
     files of the uninterrupted run, bit for bit;
  4. a second SIGTERM while the first is pending exits at once with 143.
With --strun, the same under the real launcher (strun --standalone, 2 workers):
  5. SIGUSR1 to strun reaches the workers, which checkpoint and exit 0; strun exits 0 calling it
     a pre-emption (it heard "preempted" on STRUN_PROGRESS_FD);
  6. self-healing: a worker stopped (SIGSTOP) after step 7 misses its heartbeats, strun declares it
     hung, restarts the group (--max-restarts 1), which resumes from checkpoint 5 and ends
     bitwise identical to the uninterrupted run.
Usage: preemption_test.py path/to/strun-train [--dp 1] [--strun path/to/strun]
(--dp 1: one rank, without tests 4-6, e.g. on a single-GPU host where ranks would share the GPU.)
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import tiny_config  # noqa: E402  (tests/trainer/train/tiny_config.py)

_args = argparse.ArgumentParser()
_args.add_argument("strun_train")
_args.add_argument("--dp", type=int, default=2)
_args.add_argument("--strun")
ARGS = _args.parse_args()
BIN = os.path.realpath(ARGS.strun_train)
DP = ARGS.dp
STRUN = os.path.realpath(ARGS.strun) if ARGS.strun else None
STEPS = 16
INTERVAL = 5
PROCS = []


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def write_config(name):
    return tiny_config.write(name + ".yaml", run="preempt", dp=DP, train_steps=STEPS,
                             checkpoint_interval=INTERVAL, checkpoints_path="ck_" + name)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rank:
    """One strun-train process with its end of the progress socket pair, read by a thread."""

    def __init__(self, rank, world, port, config, log):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                   STRUN_PROGRESS_FD=str(theirs.fileno()))
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen([BIN, "--config-file", config], env=env, stdout=out,
                                         stderr=subprocess.STDOUT, pass_fds=[theirs.fileno()])
        PROCS.append(self.proc)
        theirs.close()
        self.sock = ours
        self.reports = []  # (phase, step or None), in arrival order
        self.eof = False
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            data = self.sock.recv(4096)
            if not data:
                with self.cond:
                    self.eof = True
                    self.cond.notify_all()
                break
            m = re.fullmatch(rb'\{"phase": "(\w+)"(?:, "step": (\d+))?\}\n', data)
            report = (m.group(1).decode(), int(m.group(2)) if m.group(2) else None) if m else \
                ("garbage", data)
            with self.cond:
                self.reports.append(report)
                self.cond.notify_all()

    def wait_report(self, report, timeout=60):
        with self.cond:
            if not self.cond.wait_for(lambda: report in self.reports, timeout):
                fail("%s: no report %s within %ss; got %s" % (self.log, report, timeout, self.reports))

    def wait(self, timeout=60):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("%s: did not exit within %ss:\n%s" % (self.log, timeout, open(self.log).read()))

    def final_reports(self):
        """Everything the exited process wrote (the reader drains the socket up to its end)."""
        with self.cond:
            if not self.cond.wait_for(lambda: self.eof, 10):
                fail("%s: the progress socket was not closed by the exited process" % self.log)
            return list(self.reports)


def start(config, prefix, world=DP):
    port = free_port()
    return [Rank(r, world, port, config, "%s.%d.log" % (prefix, r)) for r in range(world)]


def finish(ranks, what):
    for r in ranks:
        rc = r.wait()
        if rc != 0:
            fail("%s: %s exited %d:\n%s" % (what, r.log, rc, open(r.log).read()))


def losses(log):
    return dict((int(s), v) for s, v in re.findall(r"step (\d+) lm_loss (\S+)", open(log).read()))


def checkpoint_files(step_dir):
    out = {}
    for root, _, files in os.walk(step_dir):
        for f in files:
            if f == "config.yaml":  # names the run's checkpoints_path
                continue
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, step_dir)] = fh.read()
    return out


def expected_reports(first, last, extra_checkpoints=()):
    """startup, training first..last, checkpoint after each interval step, at the end or listed."""
    out = [("startup", None)]
    for s in range(first, last + 1):
        out.append(("training", s))
        if s % INTERVAL == 0 or s == STEPS or s in extra_checkpoints:
            out.append(("checkpoint", s))
    return out


def main():
    work = tempfile.mkdtemp(prefix="strun-preempt.")
    os.chdir(work)
    os.environ["STRUN_DATA_HOME"] = os.path.join(work, "store")
    try:
        run_all()
    finally:
        for p in PROCS:
            if p.poll() is None:
                p.kill()
        if os.environ.get("STRUN_TEST_KEEP"):
            print("kept " + work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def run_all():
    corpus = "/usr/share/common-licenses/GPL-3"
    prep = subprocess.run([BIN, "prepare", "--input", corpus, "--output", "tiny", "--quiet",
                           "--num-workers", "1"], capture_output=True, text=True)
    if prep.returncode != 0:
        fail("prepare failed (is the GPT-2 tokenizer fetched? etc/setup/fetch-tokenizer.sh):\n" +
             prep.stdout + prep.stderr)

    # ---- 1. uninterrupted run: the reports --------------------------------------------------
    t0 = time.time()
    full = start(write_config("full"), "full")
    finish(full, "uninterrupted run")
    for r in full:
        got = r.final_reports()
        if got != expected_reports(1, STEPS):
            fail("%s: reports\n  %s\nexpected\n  %s" % (r.log, got, expected_reports(1, STEPS)))
    full_losses = losses("full.0.log")
    if sorted(full_losses) != list(range(1, STEPS + 1)):
        fail("full.0.log: expected debug loss lines for steps 1..%d" % STEPS)
    full_files = checkpoint_files("ck_full/%d" % STEPS)
    print("ok 1 - uninterrupted run reports startup, training 1..%d, checkpoint before each write "
          "(%.1fs)" % (STEPS, time.time() - t0))

    # ---- 2. pre-emption: one rank signalled, both stop at the same step -------------------------
    # After step 2 the stop is (almost always) at step 3, off the checkpoint interval; after step
    # INTERVAL - 1 at step INTERVAL, whose interval checkpoint is then not written twice.
    cases = [(signal.SIGUSR1, DP - 1, 2), (signal.SIGTERM, 0, INTERVAL - 1)]
    for n, (sig, signalled, k) in enumerate(cases, start=2):
        t0 = time.time()
        name = "pre_" + sig.name
        cfg = write_config(name)
        ranks = start(cfg, name)
        ranks[signalled].wait_report(("training", k))
        ranks[signalled].proc.send_signal(sig)
        finish(ranks, "pre-empted run (%s)" % sig.name)
        reps = [r.final_reports() for r in ranks]
        last = [rep[-1] for rep in reps]
        if last[0][0] != "preempted" or any(l != last[0] for l in last):
            fail("%s: last reports %s, expected the same ('preempted', m) from both ranks" %
                 (sig.name, last))
        m = last[0][1]
        if not k < m < STEPS:
            fail("%s sent after step %d but the ranks stopped at step %d" % (sig.name, k, m))
        for r, rep in zip(ranks, reps):
            want = expected_reports(1, m, extra_checkpoints=(m,)) + [("preempted", m)]
            if rep != want:
                fail("%s: reports\n  %s\nexpected\n  %s" % (r.log, rep, want))
        ck = "ck_" + name
        latest = open(ck + "/latest.txt").read().strip()
        if latest != str(m):
            fail("%s/latest.txt is %s, expected %d" % (ck, latest, m))
        for r in range(DP):
            shard = "%s/%d/optimizer/optimizer_pp-0-of-1_dp-%d-of-%d_tp-0-of-1_exp-0-of-1.safetensors" % (ck, m, r, DP)
            if not os.path.isfile(shard):
                fail("pre-emption checkpoint lacks rank %d's optimizer shard %s" % (r, shard))
        if any(".tmp-" in e for e in os.listdir(ck)):
            fail("%s: a temporary checkpoint directory was left: %s" % (ck, os.listdir(ck)))
        log0 = open(name + ".0.log").read()
        who = sig.name if signalled == 0 else "signal received by another rank"
        line = "Pre-emption (%s): checkpoint of step %d written to %s/%d; exiting so the job can be requeued" % (who, m, ck, m)
        if line not in log0:
            fail("%s.0.log lacks the line '%s':\n%s" % (name, line, log0))
        if "%s received" % sig.name not in open("%s.%d.log" % (name, signalled)).read():
            fail("the signalled rank did not log that it received %s" % sig.name)

        # Resume to the end: identical to the uninterrupted run.
        resumed = start(cfg, name + "_resumed")
        finish(resumed, "resumed run (%s)" % sig.name)
        for r in resumed:
            got = r.final_reports()
            if got != expected_reports(m + 1, STEPS):
                fail("%s: reports %s, expected %s" % (r.log, got, expected_reports(m + 1, STEPS)))
        res_losses = losses(name + "_resumed.0.log")
        if sorted(res_losses) != list(range(m + 1, STEPS + 1)):
            fail("resumed run logged losses of steps %s, expected %d..%d" % (sorted(res_losses), m + 1, STEPS))
        for s, v in res_losses.items():
            if v != full_losses[s]:
                fail("step %d: lm_loss %s after resuming from %d, %s uninterrupted" % (s, v, m, full_losses[s]))
        files = checkpoint_files("%s/%d" % (ck, STEPS))
        if sorted(files) != sorted(full_files):
            fail("final checkpoint file lists differ: %s vs %s" % (sorted(files), sorted(full_files)))
        for f in files:
            if files[f] != full_files[f]:
                fail("%s of the final checkpoint differs from the uninterrupted run's" % f)
        print("ok %d - %s to rank %d after step %d: every rank checkpointed step %d and exited 0; "
              "resumed run is bitwise identical (%d files, final lm_loss %s) (%.1fs)" %
              (n, sig.name, signalled, k, m, len(files), res_losses[STEPS], time.time() - t0))

    # ---- 4. a second SIGTERM while the first is pending: exit now with 143 -------------------
    if DP < 2:
        return
    t0 = time.time()
    ranks = start(write_config("now"), "now")
    ranks[0].wait_report(("training", 2))
    ranks[1].proc.send_signal(signal.SIGSTOP)  # rank 0's pending stop now waits in a collective
    ranks[0].proc.send_signal(signal.SIGTERM)
    time.sleep(2.5)  # within 2 s a second SIGTERM is the same stop delivered twice (Slurm + strun)
    if ranks[0].proc.poll() is not None:
        fail("rank 0 exited (%d) on the first SIGTERM while rank 1 was stopped" % ranks[0].proc.returncode)
    t1 = time.time()
    ranks[0].proc.send_signal(signal.SIGTERM)
    rc = ranks[0].wait(timeout=10)
    quick = time.time() - t1
    ranks[1].proc.kill()
    ranks[1].proc.send_signal(signal.SIGCONT)
    ranks[1].proc.wait()
    if rc != 143:
        fail("second SIGTERM: rank 0 exited %d, expected 143:\n%s" % (rc, open("now.0.log").read()))
    if quick > 5:
        fail("second SIGTERM: rank 0 took %.1fs to exit" % quick)
    print("ok 4 - a second SIGTERM exits at once with 143 (%.2fs) (%.1fs)" % (quick, time.time() - t0))

    if STRUN:
        under_strun(full_losses, full_files)


def strun_start(config, name, extra):
    # --log-dir: strun's run directory goes away with the test's (it would stay in /tmp).
    cmd = [STRUN, "--standalone", "--nproc-per-node=2", "--no-python",
           "--log-dir", os.path.join(os.getcwd(), "strun-logs")] + extra + [BIN, "--config-file", config]
    with open(name + ".log", "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    PROCS.append(proc)
    return proc


def wait_for_output(log, pattern, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = re.search(pattern, open(log).read())
        if m:
            return m
        if proc.poll() is not None:
            fail("%s: strun exited %d before '%s':\n%s" % (log, proc.returncode, pattern, open(log).read()))
        time.sleep(0.05)
    fail("%s: no '%s' within %ss" % (log, pattern, timeout))


def strun_wait(proc, log, timeout=90):
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail("%s: strun did not exit within %ss:\n%s" % (log, timeout, open(log).read()))
    if rc != 0:
        fail("%s: strun exited %d:\n%s" % (log, rc, open(log).read()))
    return open(log).read()


def worker_pid(config, rank):
    """The strun-train process of `rank` that runs `config` from this directory."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open("/proc/%s/cmdline" % pid, "rb").read().split(b"\0")
            if cmd[:3] != [BIN.encode(), b"--config-file", config.encode()]:
                continue
            if os.readlink("/proc/%s/cwd" % pid) != os.getcwd():
                continue
            if ("RANK=%d" % rank).encode() in open("/proc/%s/environ" % pid, "rb").read().split(b"\0"):
                return int(pid)
        except OSError:
            continue
    fail("no strun-train process of rank %d for %s" % (rank, config))


def under_strun(full_losses, full_files):
    # ---- 5. SIGUSR1 to strun: forwarded, checkpointed, reported, exit 0 -----------------------
    t0 = time.time()
    cfg = write_config("strun_usr1")
    proc = strun_start(cfg, "strun_usr1",
                       ["--signals-to-handle", "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1"])
    wait_for_output("strun_usr1.log", r"step 2 lm_loss", proc)
    proc.send_signal(signal.SIGUSR1)
    out = strun_wait(proc, "strun_usr1.log")
    m = re.search(r"Pre-emption \(SIGUSR1\): checkpoint of step (\d+) written to ck_strun_usr1/", out)
    if not m:
        fail("strun_usr1.log: no pre-emption line from rank 0:\n" + out)
    m = int(m.group(1))
    said = "the workers wrote a pre-emption checkpoint at step %d" % m
    if said not in out:
        fail("strun_usr1.log: strun did not say '%s' (did it get 'preempted' on "
             "STRUN_PROGRESS_FD?):\n%s" % (said, out))
    if open("ck_strun_usr1/latest.txt").read().strip() != str(m):
        fail("ck_strun_usr1/latest.txt is not %d" % m)
    print("ok 5 - strun: SIGUSR1 forwarded, both workers checkpointed step %d, strun exited 0 "
          "reporting a pre-emption (%.1fs)" % (m, time.time() - t0))

    # ---- 6. a stopped worker is declared hung; the restarted group resumes bitwise ------------
    t0 = time.time()
    cfg = write_config("strun_hang")
    proc = strun_start(cfg, "strun_hang", ["--max-restarts", "1", "--hang-timeout", "5"])
    wait_for_output("strun_hang.log", r"step 7 lm_loss", proc)
    stopped_at = time.time()
    os.kill(worker_pid(cfg, 1), signal.SIGSTOP)
    out = strun_wait(proc, "strun_hang.log")
    for want in ["rank 1 is hung", "restarting the worker group", "Loading weights from ck_strun_hang/5"]:
        if want not in out:
            fail("strun_hang.log lacks '%s':\n%s" % (want, out))
    got = losses("strun_hang.log")  # the restarted attempt's lines come last and win
    if got != full_losses:
        fail("losses after the hang and restart differ from the uninterrupted run:\n%s\n%s" %
             (got, full_losses))
    files = checkpoint_files("ck_strun_hang/%d" % STEPS)
    if files != full_files:
        fail("the final checkpoint after the hang and restart differs from the uninterrupted run's")
    print("ok 6 - strun: a worker stopped after step 7 was declared hung, the group restarted from "
          "checkpoint 5 and ended bitwise identical (%.1fs after the stop)" % (time.time() - stopped_at))


if __name__ == "__main__":
    main()
