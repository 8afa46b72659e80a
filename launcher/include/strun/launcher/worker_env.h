// strun/launcher/worker_env.h: what a worker process is started with.
//
// The environment is torchrun's contract: the agent's own environment, plus
//   RANK LOCAL_RANK WORLD_SIZE LOCAL_WORLD_SIZE GROUP_RANK GROUP_WORLD_SIZE ROLE_RANK ROLE_NAME
//   ROLE_WORLD_SIZE MASTER_ADDR MASTER_PORT TORCHELASTIC_RESTART_COUNT TORCHELASTIC_MAX_RESTARTS
//   TORCHELASTIC_RUN_ID TORCHELASTIC_USE_AGENT_STORE=False (global rank 0 hosts the c10d store on
//   MASTER_PORT) TORCHELASTIC_ERROR_FILE TORCHELASTIC_SIGNALS_TO_HANDLE
//   TORCH_NCCL_ASYNC_ERROR_HANDLING (inherited, else 1)
//   OMP_NUM_THREADS=1 when unset and LOCAL_WORLD_SIZE > 1
// With --virtual-local-rank, LOCAL_RANK=0 and CUDA_VISIBLE_DEVICES names the worker's one GPU
// (mapped through the inherited CUDA_VISIBLE_DEVICES), as torchrun does.
//
// The command is torchrun's: `PYTHON -u [-m] script args...`, or `script args...` with
// --no-python, or `PYTHON -u -c <runpy.run_path> script args...` with --run-path. PYTHON is
// $STRUN_PYTHON, else $PYTHON_EXEC (torchrun's override), else `python3` looked up in PATH.
// (torchrun uses its own sys.executable; a native launcher has none. Where the first python3 in
// PATH lacks torch, set STRUN_PYTHON=/usr/bin/python3 or put the right one first in PATH.)
#pragma once

#include <map>
#include <string>
#include <vector>

#include "strun/environment.h"
#include "strun/launcher/options.h"
#include "strun/launcher/plan.h"
#include "strun/result.h"

namespace strun::launcher {

using strun::EnvMap;  // strun/environment.h

struct WorkerIdentity {
  int local_rank = 0;
  int rank = 0;
};

// The attempt-wide values agent 0 announces.
struct AttemptInfo {
  int restart_count = 0;
  std::string master_addr;
  int master_port = 0;
};

Result<EnvMap> BuildWorkerEnv(const LaunchOptions& options, const LaunchPlan& plan,
                              const EnvMap& agent_env, const WorkerIdentity& worker,
                              const AttemptInfo& attempt, const std::string& error_file);

// The worker's argv; argv[0] is looked up in PATH when it has no '/'.
std::vector<std::string> WorkerCommand(const LaunchOptions& options, const EnvMap& agent_env);

// The python interpreter WorkerCommand uses.
std::string PythonExecutable(const EnvMap& agent_env);

}  // namespace strun::launcher
