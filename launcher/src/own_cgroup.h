// Internal: a cgroup v2 of strun's own for its workers (process.h says what it covers).
#pragma once

#include <string>

#include "strun/result.h"

namespace strun::launcher {

// <cgroup2 mount><strun's cgroup>/strun-<pid>, created when strun may (root, or a delegated
// subtree). An error says why not; strun then runs without one.
Result<std::string> CreateOwnCgroup();

// Kills every process in the cgroup (cgroup.kill, else SIGKILL to each listed process until none
// is left), waits up to `timeout_s` for it to empty and removes it. Uses no heap memory after
// `dir` (the guardian calls it). Returns whether the cgroup is gone.
bool KillAndRemoveCgroup(const char* dir, double timeout_s);

}  // namespace strun::launcher
