// strun/edf/launch.h: what `strun --environment=ENV` calls where the SPANK plugin is not installed.
//
//   auto c = strun::edf::PrepareEnvironment(env_flag, &warnings);   // once per node, in the agent
//   if (!c.ok()) { print c.error().message; exit 1; }
//   // *c is null when the process already runs inside an EDF container (srun --environment):
//   // then workers start as usual.
//   in each worker child after fork():  if (*c) { (*c)->Enter(); env = (*c)->TaskEnvironment(env);
//   } at exit:                            if (*c) (*c)->Destroy();
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "strun/edf/container.h"
#include "strun/result.h"

namespace strun::edf {

// Set in every task the SPANK plugin starts in a container: the resolved EDF file.
inline constexpr const char* kContainerEnvVar = "STRUN_EDF_ENVIRONMENT";

// True when the calling process runs in a container started by spank_strun.so.
bool InsideEdfContainer();

// Loads `environment` (as --environment resolves it, against this process's environment and
// working directory), checks it for the calling user and creates its container, whose tasks will
// run as that user. Returns null (and does nothing) when already inside an EDF container. Needs
// root (see container.h). Non-fatal findings (unknown keys) go to `warnings` when given.
Result<std::unique_ptr<Container>> PrepareEnvironment(std::string_view environment,
                                                      std::vector<std::string>* warnings = nullptr);

}  // namespace strun::edf
