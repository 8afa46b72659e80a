"""A real PyTorch distributed worker: checks torchrun's worker environment, all-reduces over gloo.

Started by strun (or torchrun) as one process per rank. It checks the environment contract of
torchrun's workers, joins the process group with init_process_group("gloo", init_method="env://"),
all-reduces, gathers every rank's identity to check the whole layout, and prints one line per rank.
It exits non-zero, naming what was wrong, when a check fails.

Environment it reads besides torchrun's (all optional):
  CHECK_DIR                 write attempt<R>-rank<N>.json records (what this rank saw) here
  CHECK_WORLD_SIZE, CHECK_LOCAL_WORLD_SIZE, CHECK_NNODES, CHECK_MAX_RESTARTS, CHECK_RESTART_COUNT
                            expected values
  CHECK_OMP_PRESET=1        OMP_NUM_THREADS was set before the launch: do not expect strun's 1
  CHECK_SLURM_MODE          'node' (one strun per node starting LOCAL_WORLD_SIZE workers) or 'task'
                            (one strun per Slurm task): check the ranks against SLURM_*
  FAIL_ONCE_NODE, FAIL_ONCE_LOCAL_RANK
                            the worker with that SLURMD_NODENAME and LOCAL_RANK exits with code 17
                            after the all-reduce of attempt 0 (TORCHELASTIC_RESTART_COUNT=0)
  WAIT_FOR_RELEASE=1        after the all-reduce, write ready-rank<N>.json, then wait (up to 120 s)
                            for the file CHECK_DIR/release, counting SIGUSR1s in usr1-rank<N>
"""
import datetime
import json
import os
import signal
import socket
import sys
import time

REQUIRED = [
    "RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
    "ROLE_RANK", "ROLE_NAME", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
    "TORCHELASTIC_RESTART_COUNT", "TORCHELASTIC_MAX_RESTARTS", "TORCHELASTIC_RUN_ID",
    "TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_ERROR_FILE", "TORCH_NCCL_ASYNC_ERROR_HANDLING",
]

env = os.environ
errors = []


def check(condition, message):
    if not condition:
        errors.append(message)


def as_int(name):
    try:
        return int(env[name])
    except (KeyError, ValueError):
        errors.append(f"{name}={env.get(name)!r} is not an integer")
        return -1


def expect_env_int(var, expected_var):
    if expected_var in env:
        check(as_int(var) == int(env[expected_var]), f"{var}={env.get(var)} but {env[expected_var]} was expected")


def node_name():
    return env.get("SLURMD_NODENAME") or socket.gethostname()


def check_contract():
    missing = [v for v in REQUIRED if v not in env]
    if missing:
        errors.append("missing worker variables: " + " ".join(missing))
        return
    rank, local_rank = as_int("RANK"), as_int("LOCAL_RANK")
    world, local_world = as_int("WORLD_SIZE"), as_int("LOCAL_WORLD_SIZE")
    group_rank, group_world = as_int("GROUP_RANK"), as_int("GROUP_WORLD_SIZE")
    check(0 <= rank < world, f"RANK={rank} outside WORLD_SIZE={world}")
    check(0 <= local_rank < local_world, f"LOCAL_RANK={local_rank} outside LOCAL_WORLD_SIZE={local_world}")
    check(0 <= group_rank < group_world, f"GROUP_RANK={group_rank} outside GROUP_WORLD_SIZE={group_world}")
    check(env["ROLE_NAME"] == "default", f"ROLE_NAME={env['ROLE_NAME']!r}, expected 'default'")
    check(as_int("ROLE_RANK") == rank, f"ROLE_RANK={env['ROLE_RANK']} differs from RANK={rank}")
    check(as_int("ROLE_WORLD_SIZE") == world, f"ROLE_WORLD_SIZE={env['ROLE_WORLD_SIZE']} differs from WORLD_SIZE={world}")
    check(env["TORCHELASTIC_USE_AGENT_STORE"] == "False",
          f"TORCHELASTIC_USE_AGENT_STORE={env['TORCHELASTIC_USE_AGENT_STORE']!r}, expected 'False'")
    check(env["TORCH_NCCL_ASYNC_ERROR_HANDLING"] == "1",
          f"TORCH_NCCL_ASYNC_ERROR_HANDLING={env['TORCH_NCCL_ASYNC_ERROR_HANDLING']!r}, expected '1'")
    check(env["TORCHELASTIC_ERROR_FILE"].endswith(".json"),
          f"TORCHELASTIC_ERROR_FILE={env['TORCHELASTIC_ERROR_FILE']!r} is not a json file path")
    if local_world > 1 and env.get("CHECK_OMP_PRESET") is None:
        check(env.get("OMP_NUM_THREADS") == "1", f"OMP_NUM_THREADS={env.get('OMP_NUM_THREADS')!r} with {local_world} local workers, expected '1'")
    port = as_int("MASTER_PORT")
    check(0 < port < 65536, f"MASTER_PORT={port} is not a port")
    # A real address: it must resolve here (node names of the test cluster do not).
    try:
        infos = socket.getaddrinfo(env["MASTER_ADDR"], port, type=socket.SOCK_STREAM)
        check(len(infos) > 0, f"MASTER_ADDR={env['MASTER_ADDR']} resolves to nothing")
    except socket.gaierror as e:
        errors.append(f"MASTER_ADDR={env['MASTER_ADDR']!r} does not resolve: {e}")
    expect_env_int("WORLD_SIZE", "CHECK_WORLD_SIZE")
    expect_env_int("LOCAL_WORLD_SIZE", "CHECK_LOCAL_WORLD_SIZE")
    expect_env_int("GROUP_WORLD_SIZE", "CHECK_NNODES")
    expect_env_int("TORCHELASTIC_MAX_RESTARTS", "CHECK_MAX_RESTARTS")
    expect_env_int("TORCHELASTIC_RESTART_COUNT", "CHECK_RESTART_COUNT")

    mode = env.get("CHECK_SLURM_MODE")
    if mode:
        check(env["TORCHELASTIC_RUN_ID"] == env.get("SLURM_JOB_ID"),
              f"TORCHELASTIC_RUN_ID={env['TORCHELASTIC_RUN_ID']} differs from SLURM_JOB_ID={env.get('SLURM_JOB_ID')}")
        check(group_rank == as_int("SLURM_NODEID"), f"GROUP_RANK={group_rank} but SLURM_NODEID={env.get('SLURM_NODEID')}")
        check(group_world == as_int("SLURM_NNODES"), f"GROUP_WORLD_SIZE={group_world} but SLURM_NNODES={env.get('SLURM_NNODES')}")
    if mode == "node":
        check(rank == group_rank * local_world + local_rank,
              f"RANK={rank} is not GROUP_RANK*LOCAL_WORLD_SIZE+LOCAL_RANK={group_rank * local_world + local_rank}")
    elif mode == "task":
        check(rank == as_int("SLURM_PROCID"), f"RANK={rank} but SLURM_PROCID={env.get('SLURM_PROCID')}")
        check(local_rank == as_int("SLURM_LOCALID"), f"LOCAL_RANK={local_rank} but SLURM_LOCALID={env.get('SLURM_LOCALID')}")
        check(world == as_int("SLURM_NTASKS"), f"WORLD_SIZE={world} but SLURM_NTASKS={env.get('SLURM_NTASKS')}")


def record(name, data):
    directory = env.get("CHECK_DIR")
    if not directory:
        return
    tmp = os.path.join(directory, f".{name}.{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.rename(tmp, os.path.join(directory, name))


def fail(stage):
    for e in errors:
        print(f"CHECK FAILED [{stage}] rank {env.get('RANK')} on {node_name()}: {e}", file=sys.stderr, flush=True)
    sys.exit(2)


def main():
    check_contract()
    if errors:
        fail("environment")

    import torch
    import torch.distributed as dist

    rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
    restart = int(env["TORCHELASTIC_RESTART_COUNT"])
    usr1 = {"count": 0}
    if env.get("WAIT_FOR_RELEASE") == "1":
        signal.signal(signal.SIGUSR1, lambda *_: usr1.__setitem__("count", usr1["count"] + 1))

    identity = {
        "rank": rank, "local_rank": int(env["LOCAL_RANK"]), "world_size": world,
        "local_world_size": int(env["LOCAL_WORLD_SIZE"]), "group_rank": int(env["GROUP_RANK"]),
        "group_world_size": int(env["GROUP_WORLD_SIZE"]), "node": node_name(),
        "master_addr": env["MASTER_ADDR"], "master_port": int(env["MASTER_PORT"]),
        "restart_count": restart, "max_restarts": int(env["TORCHELASTIC_MAX_RESTARTS"]),
        "run_id": env["TORCHELASTIC_RUN_ID"], "pid": os.getpid(),
        "slurm_job_id": env.get("SLURM_JOB_ID"), "pmix_rank": env.get("PMIX_RANK"),
    }
    dist.init_process_group("gloo", init_method="env://", timeout=datetime.timedelta(seconds=60))
    check(dist.get_rank() == rank and dist.get_world_size() == world,
          f"process group has rank {dist.get_rank()} of {dist.get_world_size()}, environment says {rank} of {world}")

    t = torch.tensor([float(rank + 1)])
    dist.all_reduce(t)
    expected = world * (world + 1) / 2
    check(t.item() == expected, f"all_reduce gave {t.item()}, expected {expected}")

    everyone = [None] * world
    dist.all_gather_object(everyone, identity)
    check(sorted(p["rank"] for p in everyone) == list(range(world)), "ranks are not 0..WORLD_SIZE-1 exactly once")
    by_group = {}
    for p in everyone:
        by_group.setdefault(p["group_rank"], []).append(p)
    for g, members in by_group.items():
        nodes = {p["node"] for p in members}
        check(len(nodes) == 1, f"GROUP_RANK {g} spans nodes {sorted(nodes)}")
        check(sorted(p["local_rank"] for p in members) == list(range(members[0]["local_world_size"])),
              f"local ranks of GROUP_RANK {g} are not 0..LOCAL_WORLD_SIZE-1")
    check(len({p["master_addr"] for p in everyone}) == 1, "ranks disagree on MASTER_ADDR")
    check(len({p["run_id"] for p in everyone}) == 1, "ranks disagree on TORCHELASTIC_RUN_ID")
    rank0 = next(p for p in everyone if p["rank"] == 0)
    check(rank0["group_rank"] == 0, f"rank 0 has GROUP_RANK {rank0['group_rank']}")
    if errors:
        fail("distributed")
    identity["all_reduce"] = t.item()

    if (env.get("FAIL_ONCE_NODE") == node_name() and env.get("FAIL_ONCE_LOCAL_RANK") == env["LOCAL_RANK"]
            and restart == 0):
        record(f"failed-attempt{restart}-rank{rank}.json", identity)
        print(f"rank {rank} on {node_name()}: failing on purpose (attempt {restart})", file=sys.stderr, flush=True)
        os._exit(17)

    if env.get("WAIT_FOR_RELEASE") == "1":
        record(f"ready-rank{rank}.json", identity)
        release = os.path.join(env["CHECK_DIR"], "release")
        deadline = time.time() + 120
        seen = 0
        while not os.path.exists(release):
            if usr1["count"] != seen:
                seen = usr1["count"]
                record(f"usr1-rank{rank}", {"count": seen})
            if time.time() > deadline:
                print(f"rank {rank}: no release file after 120 s", file=sys.stderr, flush=True)
                sys.exit(3)
            time.sleep(0.02)
        identity["usr1"] = usr1["count"]

    # Every rank leaves together: a rank that failed above makes the others fail here too.
    dist.barrier()
    dist.destroy_process_group()
    record(f"attempt{restart}-rank{rank}.json", identity)
    print(f"rank {rank}/{world} local {identity['local_rank']}/{identity['local_world_size']} "
          f"node {identity['node']} group {identity['group_rank']}/{identity['group_world_size']} "
          f"master {identity['master_addr']}:{identity['master_port']} restart {restart}: "
          f"all_reduce {t.item():g} ok", flush=True)


if __name__ == "__main__":
    main()
