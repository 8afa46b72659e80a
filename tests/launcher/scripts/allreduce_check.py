"""A real torch.distributed job for launcher tests: checks the torchrun worker environment,
initialises gloo through env://, all-reduces, and prints one "ALLREDUCE_OK" line per rank.

Options:
  --fail-once-rank R   rank R exits with code 3 on the first attempt (TORCHELASTIC_RESTART_COUNT=0)
  --fail-rank R        rank R always exits with code CODE (--fail-code, default 3) before init
  --expect-world N     WORLD_SIZE must be N
  --expect-restarts N  TORCHELASTIC_RESTART_COUNT must be N at the successful attempt
  --expect-local-world N  LOCAL_WORLD_SIZE must be N
"""
import argparse
import os
import socket
import sys

REQUIRED = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
            "ROLE_RANK", "ROLE_NAME", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
            "TORCHELASTIC_RESTART_COUNT", "TORCHELASTIC_MAX_RESTARTS", "TORCHELASTIC_RUN_ID",
            "TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_ERROR_FILE", "TORCH_NCCL_ASYNC_ERROR_HANDLING"]


def fail(msg):
    print(f"ENV_CHECK_FAILED: {msg}", file=sys.stderr, flush=True)
    sys.exit(4)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--fail-once-rank", type=int, default=-1)
    p.add_argument("--fail-rank", type=int, default=-1)
    p.add_argument("--fail-code", type=int, default=3)
    p.add_argument("--expect-world", type=int, default=-1)
    p.add_argument("--expect-restarts", type=int, default=-1)
    p.add_argument("--expect-local-world", type=int, default=-1)
    a = p.parse_args()

    missing = [k for k in REQUIRED if k not in os.environ]
    if missing:
        fail(f"missing {missing}")
    env = {k: os.environ[k] for k in REQUIRED}
    rank, local_rank = int(env["RANK"]), int(env["LOCAL_RANK"])
    world, local_world = int(env["WORLD_SIZE"]), int(env["LOCAL_WORLD_SIZE"])
    group_rank, group_world = int(env["GROUP_RANK"]), int(env["GROUP_WORLD_SIZE"])
    restarts = int(env["TORCHELASTIC_RESTART_COUNT"])
    if not (0 <= rank < world and 0 <= local_rank < local_world and 0 <= group_rank < group_world):
        fail(f"inconsistent ranks {env}")
    if env["ROLE_RANK"] != env["RANK"] or env["ROLE_WORLD_SIZE"] != env["WORLD_SIZE"]:
        fail("ROLE_RANK/ROLE_WORLD_SIZE differ from RANK/WORLD_SIZE")
    if env["TORCHELASTIC_USE_AGENT_STORE"] != "False":
        fail("TORCHELASTIC_USE_AGENT_STORE must be False")
    if local_world > 1 and os.environ.get("OMP_NUM_THREADS") is None:
        fail("OMP_NUM_THREADS unset with several local workers")
    if a.expect_world >= 0 and world != a.expect_world:
        fail(f"WORLD_SIZE={world}, expected {a.expect_world}")
    if a.expect_local_world >= 0 and local_world != a.expect_local_world:
        fail(f"LOCAL_WORLD_SIZE={local_world}, expected {a.expect_local_world}")
    if rank == a.fail_rank:
        print(f"rank {rank} failing on purpose with code {a.fail_code}", file=sys.stderr, flush=True)
        sys.exit(a.fail_code)
    if rank == a.fail_once_rank and restarts == 0:
        print(f"rank {rank} failing once on purpose", file=sys.stderr, flush=True)
        sys.exit(3)
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method="env://")
    if dist.get_rank() != rank or dist.get_world_size() != world:
        fail("process group disagrees with RANK/WORLD_SIZE")
    t = torch.tensor([float(rank)])
    dist.all_reduce(t)
    expected = world * (world - 1) / 2
    if t.item() != expected:
        fail(f"all_reduce gave {t.item()}, expected {expected}")
    # Every rank agrees on the group's layout.
    info = [None] * world
    dist.all_gather_object(info, (rank, local_rank, group_rank, socket.gethostname(),
                                  env["MASTER_ADDR"], env["MASTER_PORT"], env["TORCHELASTIC_RUN_ID"]))
    if sorted(i[0] for i in info) != list(range(world)):
        fail(f"ranks are not 0..{world - 1}: {info}")
    if len({(i[4], i[5], i[6]) for i in info}) != 1:
        fail(f"ranks disagree on MASTER_ADDR/MASTER_PORT/RUN_ID: {info}")
    dist.barrier()
    dist.destroy_process_group()
    # Checked once the group worked: on an attempt that is meant to fail, the other ranks are
    # stopped while they wait in init_process_group.
    if a.expect_restarts >= 0 and restarts != a.expect_restarts:
        fail(f"TORCHELASTIC_RESTART_COUNT={restarts}, expected {a.expect_restarts}")
    print(f"ALLREDUCE_OK rank={rank} world={world} local_rank={local_rank} group_rank={group_rank} "
          f"restarts={restarts} sum={t.item()}", flush=True)


if __name__ == "__main__":
    main()
