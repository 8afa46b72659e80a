// parallel/torchrun_env.h: the worker environment that torchrun (and strun) give each process.
//
// RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT. A process started with none of them
// set is a single-process run (rank 0 of 1), so `strun-train --config-file x.yaml` works alone.
#pragma once

#include <string>

#include "strun/result.h"

namespace strun::parallel {

struct TorchrunEnv {
  int rank = 0;
  int local_rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// Reads the torchrun variables from the process environment. A partially set environment (for
// example RANK without WORLD_SIZE) or a value that is not a number is an error naming the variable.
Result<TorchrunEnv> ReadTorchrunEnv();

}  // namespace strun::parallel
