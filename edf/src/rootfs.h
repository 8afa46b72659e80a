// Internal: building a container's root file system inside the keeper process (container.cc).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "strun/edf/container.h"
#include "strun/edf/edf.h"
#include "strun/result.h"

namespace strun::edf::internal {

struct BuiltRoot {
  std::vector<std::string> image_env;  // KEY=VALUE
  std::string image_workdir;           // "" when the image names none
};

// Everything between "a private mount namespace exists" and "pivot_root is done" (container.h
// steps 1-6), run in the keeper. `staging` is an empty directory. The FUSE daemons started are
// appended to `fuse_pids` (also on failure) so that the keeper can stop them.
Result<BuiltRoot> BuildRoot(const Edf& edf, const RuntimeOptions& opts, const std::string& staging,
                            std::vector<pid_t>& fuse_pids);

}  // namespace strun::edf::internal
