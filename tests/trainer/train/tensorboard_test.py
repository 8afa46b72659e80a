#!/usr/bin/python3
"""Integration test of strun-train's TensorBoard event files (tensorboard_log.h), on CPU.

The files are read back by tests/tools/read_tfevents.py (its own TFRecord, CRC-32C and protobuf
decoding) and compared with the iteration lines of the same run:
  1. --tensorboard-dir, 2 ranks: one file (rank 0's) in DIR/<general.run>, file_version first, the
     resolved config as text at step 0 (= `--check`'s YAML), and per logged step one scalar per
     value of the iteration line, equal to the line's value (3 digits) and to the debug line's
     full-precision lm_loss, grad_norm and lr (as float32);
  2. resuming (train_steps raised): a second file with SessionLog START and the config at the first
     step it trains, and scalars only for steps after the checkpoint: no step twice;
  3. a crash after the last checkpoint (rank 0 killed in the checkpoint of step 8, the last
     checkpoint being 4): the resumed run's file starts with START at step 5, so that TensorBoard
     drops the crashed run's steps 5-8; with that rule every step has one value, equal to an
     uninterrupted run's;
  4. STRUN_TENSORBOARD_DIR alone turns it on; with --tensorboard-dir too, the flag wins;
  5. a folder that cannot be created: one warning, training finishes (exit 0).
Usage: tensorboard_test.py path/to/strun-train
"""
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import tiny_config  # noqa: E402  (tests/trainer/train/tiny_config.py)

BIN = os.path.realpath(sys.argv[1])
READER = os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", "tools",
                      "read_tfevents.py")


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def write_config(name, run, steps, ck, dp=1):
    return tiny_config.write(name, run=run, dp=dp, train_steps=steps, checkpoint_interval=4,
                             checkpoints_path=ck)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(config, prefix, args=(), env=None, dp=1, expect=0):
    """Runs dp ranks; returns rank 0's log text."""
    port = free_port()
    procs = []
    for r in range(dp):
        e = dict(os.environ if env is None else env, RANK=str(r), LOCAL_RANK=str(r),
                 WORLD_SIZE=str(dp), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        out = open("%s.%d.log" % (prefix, r), "w")
        procs.append(subprocess.Popen([BIN, "--config-file", config, *args], env=e, stdout=out,
                                      stderr=subprocess.STDOUT))
    for r, p in enumerate(procs):
        rc = p.wait(300)
        if r == 0 and rc != expect:
            fail("%s: rank 0 exited %d, expected %d:\n%s" % (prefix, rc, expect,
                                                            open(prefix + ".0.log").read()))
    return open(prefix + ".0.log").read()


def read_events(path):
    r = subprocess.run(["/usr/bin/python3", READER, path], capture_output=True, text=True)
    if r.returncode != 0:
        fail("read_tfevents %s: %s" % (path, r.stderr))
    return json.loads(r.stdout)


def iteration_lines(log):
    """{step: {tag: text}} of the iteration lines."""
    out = {}
    for m in re.finditer(r"iteration: (\d+) / \d+ \| (.*)", log):
        out[int(m.group(1))] = dict(kv.split(": ", 1) for kv in m.group(2).split(" | "))
    return out


def debug_lines(log):
    return {int(s): (float(l), float(g), float(r)) for s, l, g, r in re.findall(
        r"step (\d+) lm_loss (\S+) grad_norm (\S+) lr (\S+)", log)}


SUFFIXES = ["", "K", "M", "G", "T", "P", "E"]


def parse_human(text):
    """nanotron's human_format back to a number (and the unit of its last digit)."""
    m = re.fullmatch(r"(-?[0-9.e+-]+)([KMGTPE]?)", text)
    scale = 1000.0 ** SUFFIXES.index(m.group(2))
    return float(m.group(1)) * scale


def f32(x):
    import struct
    return struct.unpack("<f", struct.pack("<f", x))[0]


def scalars_by_step(events):
    out = {}
    for e in events:
        if "scalars" in e:
            if e["step"] in out:
                fail("step %d has two scalar events in one file" % e["step"])
            out[e["step"]] = e["scalars"]
    return out


def check_against_log(scalars, log, steps):
    lines, debug = iteration_lines(log), debug_lines(log)
    if sorted(scalars) != sorted(steps) or not set(steps) <= set(lines):
        fail("scalar steps %s, expected %s (iteration lines: %s)" %
             (sorted(scalars), sorted(steps), sorted(lines)))
    for step in steps:
        values, line = scalars[step], lines[step]
        if set(values) != set(line):
            fail("step %d: tags %s, the iteration line has %s" % (step, sorted(values), sorted(line)))
        for tag, text in line.items():
            want = parse_human(text)
            # human_format keeps 3 significant digits
            if not math.isclose(values[tag], want, rel_tol=6e-3, abs_tol=1e-12):
                fail("step %d: %s is %r in the events file, %s in the log" %
                     (step, tag, values[tag], text))
        loss, gnorm, lr = debug[step]
        for tag, want in (("lm_loss", loss), ("grad_norm", gnorm), ("lr", lr)):
            if not math.isclose(values[tag], f32(want), rel_tol=1e-6):
                fail("step %d: %s is %r, the debug line says %r" % (step, tag, values[tag], want))


def files_of(folder):
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if "tfevents" in n)


def main():
    work = tempfile.mkdtemp(prefix="strun-tb-test.")
    os.chdir(work)
    os.environ["STRUN_DATA_HOME"] = os.path.join(work, "store")
    os.environ.pop("STRUN_TENSORBOARD_DIR", None)
    r = subprocess.run([BIN, "prepare", "--input", "/usr/share/common-licenses/GPL-3", "--output",
                        "tiny", "--quiet", "--num-workers", "1"], capture_output=True, text=True)
    if r.returncode != 0:
        fail("prepare: " + r.stdout + r.stderr)

    # 1. a fresh run of 2 ranks
    cfg = write_config("a.yaml", "tb_run", 8, "ck_a", dp=2)
    log = train(cfg, "a1", ["--tensorboard-dir", "tb"], dp=2)
    files = files_of("tb/tb_run")
    if len(files) != 1 or not re.search(r"events\.out\.tfevents\.\d+\..+\.\d+\.strun-train$",
                                        files[0]):
        fail("expected one events file from rank 0 in tb/tb_run, found %s" % files)
    events = read_events(files[0])[0]["events"]
    if events[0].get("file_version") != "brain.Event:2":
        fail("first record is %s, not file_version brain.Event:2" % events[0])
    texts = [e for e in events if "texts" in e]
    check = subprocess.run([BIN, "--config-file", cfg, "--check"], capture_output=True, text=True)
    want_yaml = "".join(l + "\n" for l in check.stdout.splitlines() if not l.startswith("# "))
    if len(texts) != 1 or texts[0]["step"] != 0:
        fail("expected the config text once at step 0, got %s" % texts)
    got_yaml = "".join(l[4:] + "\n" for l in texts[0]["texts"]["config"].splitlines())
    if got_yaml != want_yaml:
        fail("config text differs from --check's YAML:\n%s\n---\n%s" % (got_yaml, want_yaml))
    first = scalars_by_step(events)
    check_against_log(first, log, range(1, 9))
    print("1. fresh run: 8 steps; step 1: %s" % json.dumps(first[1], sort_keys=True))
    print("   log: " + re.search(r"iteration: 1 / .*", log).group(0))

    # 2. resuming from checkpoint 8 with train_steps 12
    write_config("a.yaml", "tb_run", 12, "ck_a", dp=2)
    log = train(cfg, "a2", ["--tensorboard-dir", "tb"], dp=2)
    files = files_of("tb/tb_run")
    if len(files) != 2:
        fail("expected a second events file after resuming, found %s" % files)
    second = read_events(files[1])[0]["events"]
    starts = [e["step"] for e in second if "session_log" in e]
    if starts != [9] or second[1].get("session_log") != 1:
        fail("resumed file: expected SessionLog START (1) at step 9 right after file_version: %s"
             % second[:3])
    if [e["step"] for e in second if "texts" in e] != [9]:
        fail("resumed file: expected the config text at step 9")
    resumed = scalars_by_step(second)
    check_against_log(resumed, log, range(9, 13))
    if set(resumed) & set(first):
        fail("steps written twice: %s" % sorted(set(resumed) & set(first)))
    print("2. resumed: second file has steps %s, no duplicates" % sorted(resumed))

    # 3. a crash after checkpoint 4: rank 0 killed in the checkpoint of step 8
    cfg_c = write_config("c.yaml", "crash", 10, "ck_c")
    env = dict(os.environ, STRUN_TRAIN_FAULT_KILL_IN_CHECKPOINT="8")
    train(cfg_c, "c1", ["--tensorboard-dir", "tb"], env=env, expect=-9)
    if open("ck_c/latest.txt").read().strip() != "4":
        fail("the crashed run should have left checkpoint 4 as the latest")
    log_c = train(cfg_c, "c2", ["--tensorboard-dir", "tb"])
    files = files_of("tb/crash")
    crashed, after = [read_events(f)[0]["events"] for f in files]
    crashed_steps = sorted(scalars_by_step(crashed))
    if crashed_steps[:7] != list(range(1, 8)):
        fail("the crashed run's file should keep steps 1-7 (logged before the kill): %s" %
             crashed_steps)
    if [e["step"] for e in after if "session_log" in e] != [5]:
        fail("the resumed run's file should start with SessionLog START at step 5")
    after_scalars = scalars_by_step(after)
    check_against_log(after_scalars, log_c, range(5, 11))
    # TensorBoard's rule: START at step s drops what earlier files hold for steps >= s.
    view = {s: v for s, v in scalars_by_step(crashed).items() if s < 5}
    view.update(after_scalars)
    cfg_u = write_config("u.yaml", "uninterrupted", 10, "ck_u")
    train(cfg_u, "u", ["--tensorboard-dir", "tb"])
    clean = scalars_by_step(read_events(files_of("tb/uninterrupted")[0])[0]["events"])
    for s in range(1, 11):
        for tag in ("lm_loss", "grad_norm", "lr"):
            if view[s][tag] != clean[s][tag]:
                fail("after the crash, step %d %s is %r; uninterrupted: %r" %
                     (s, tag, view[s][tag], clean[s][tag]))
    overlap = sorted(set(crashed_steps) & set(after_scalars))
    print("3. crash: crashed file steps %s, resumed file START at 5 and steps %s; re-trained "
          "steps %s equal the uninterrupted run's" % (crashed_steps, sorted(after_scalars), overlap))

    # 4. the environment variable, and the flag winning over it
    cfg_e = write_config("e.yaml", "env_run", 2, "ck_e")
    env = dict(os.environ, STRUN_TENSORBOARD_DIR=os.path.join(work, "tb_env"))
    log_e = train(cfg_e, "e", env=env)
    check_against_log(scalars_by_step(read_events("tb_env/env_run")[0]["events"]), log_e, [1, 2])
    cfg_f = write_config("f.yaml", "flag_run", 2, "ck_f")
    train(cfg_f, "f", ["--tensorboard-dir=tb_flag"], env=env)
    if not files_of("tb_flag/flag_run") or os.path.exists("tb_env/flag_run"):
        fail("--tensorboard-dir should win over STRUN_TENSORBOARD_DIR")
    print("4. STRUN_TENSORBOARD_DIR: written; --tensorboard-dir wins over it")

    # 5. a folder that cannot be created
    open("not_a_folder", "w").close()
    cfg_w = write_config("w.yaml", "warn_run", 2, "ck_w")
    log_w = train(cfg_w, "w", ["--tensorboard-dir", "not_a_folder/tb"])
    warnings = re.findall(r"WARNING.*TensorBoard.*", log_w)
    if len(warnings) != 1 or "not_a_folder/tb/warn_run" not in warnings[0]:
        fail("expected one warning naming the folder, got %s" % warnings)
    if "iteration: 2 / 2" not in log_w:
        fail("training should go on without TensorBoard output")
    print("5. unwritable folder: " + warnings[0])

    shutil.rmtree(work)
    print("PASS")


if __name__ == "__main__":
    main()
