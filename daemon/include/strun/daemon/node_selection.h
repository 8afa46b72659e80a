// strun/daemon/node_selection.h: which nodes of the allocation a launch runs on.
//
// The usable nodes are the allocation's (SLURM_JOB_NODELIST, in Slurm's order) minus those
// strund excluded and those Slurm reports unhealthy (node_state.h). Of them a launch takes the
// previous launch's nodes first, so that a relaunch moves as few ranks as possible, then spares
// in allocation order; the result is in allocation order, which is the order Slurm gives the
// step's tasks (its first node hosts rank 0 and MASTER_ADDR).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::daemon {

// `count` usable nodes, or an error that says how many are usable and why the others are not
// ("only 1 of the 2 nodes needed is usable (nid002: lost_agent, nid003: DOWN)").
// `unusable`: node -> why.
Result<std::vector<std::string>> SelectNodes(const std::vector<std::string>& allocation,
                                             const std::map<std::string, std::string>& unusable,
                                             const std::vector<std::string>& previous, int count);

}  // namespace strun::daemon
