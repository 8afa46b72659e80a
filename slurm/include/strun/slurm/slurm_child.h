// strun/slurm/slurm_child.h: libslurm calls that can neither kill nor hang the caller.
//
// libslurm calls fatal() (exit) when it finds no configuration, waits 60 s for a SLURM_CONF that
// does not exist and retries an unreachable controller for about 9 s. CallInSlurmChild runs a
// call in a forked child (stdio on /dev/null, the parent's exit handlers disarmed, slurm_init
// done) that answers through a pipe, and abandons it after a deadline.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "strun/result.h"

namespace strun::slurm {

// Whether libslurm will find a slurm.conf: $SLURM_CONF, else Debian's default path or the copy
// slurmd keeps in configless mode.
bool SlurmConfigExists();

// Runs `body` in the child. `body` returns "+payload" on success or "-error message"; the result
// is the payload, or an error prefixed with "what: " (when `what` is not empty) that also covers a
// missing configuration, a child that answered nothing and a controller that did not answer in
// time. `body` runs in a forked child of a possibly multi-threaded process: it may only call
// libslurm and build its answer.
Result<std::string> CallInSlurmChild(const std::string& what,
                                     const std::function<std::string()>& body,
                                     std::chrono::seconds timeout = std::chrono::seconds(10));

// libslurm's message for its last error (for use inside `body`).
std::string LastSlurmError();

}  // namespace strun::slurm
