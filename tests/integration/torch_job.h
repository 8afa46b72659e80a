// tests/integration/torch_job.h: running tests/integration/torch_check.py under strun and reading
// back what its ranks recorded.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cluster/command.h"

namespace strun::testing {

#ifndef STRUN_BINARY
#error "STRUN_BINARY must name the strun executable"
#endif

inline const std::string kStrun = STRUN_BINARY;
inline const std::string kTorchCheck = TORCH_CHECK_SCRIPT;
inline const std::string kSbatchExample = SBATCH_EXAMPLE;

// What one rank of torch_check.py recorded (a JSON file of CHECK_DIR).
struct RankRecord {
  int rank = -1;
  int local_rank = -1;
  int world_size = 0;
  int local_world_size = 0;
  int group_rank = -1;
  int group_world_size = 0;
  std::string node;
  std::string master_addr;
  int master_port = 0;
  int restart_count = -1;
  int max_restarts = -1;
  std::string run_id;
  int pid = 0;
  std::optional<std::string> slurm_job_id;
  std::optional<std::string> pmix_rank;
  int usr1 = 0;
};

// The records named PREFIX<rank>.json in `dir`, by rank (e.g. "attempt0-rank").
std::map<int, RankRecord> ReadRecords(const std::string& dir, const std::string& prefix);

// A fresh, world-writable directory (removed first if it exists).
std::string FreshDir(const std::string& path);

// The environment every strun run in the tests gets: Debian's python3 with torch, and nothing
// inherited that changes the worker contract.
Env TorchEnv(const std::string& check_dir);

// How many output lines say "all_reduce ... ok".
int CountOkLines(const std::string& output);

// Whether `pid` is a live (not zombie) process.
bool ProcessAlive(int pid);

}  // namespace strun::testing
