// strun/slurm/node_state.h: which nodes of a job can still run work, as slurmctld sees them.
//
//   auto states = QueryNodeStates({"nid001", "nid002"});
//   for (const NodeState& s : *states) if (!s.healthy) exclude(s.name, s.state + ": " + s.reason);
//
// The state string is scontrol's: the base state, then every flag ("ALLOCATED",
// "IDLE+DRAIN", "DOWN+NOT_RESPONDING", "MIXED+COMPLETING+DRAIN"). A node is healthy when its base
// state is IDLE, ALLOCATED or MIXED and none of the flags DRAIN (draining or drained), FAIL,
// NOT_RESPONDING, POWERED_DOWN, POWERING_DOWN, POWERING_UP, POWER_DOWN, POWER_DRAIN,
// REBOOT_ISSUED or INVALID_REG is set. DOWN, FUTURE, UNKNOWN (not registered yet) and the unused
// ERROR are unhealthy. COMPLETING, MAINTENANCE, RESERVED, PLANNED, CLOUD and REBOOT_REQUESTED (a
// reboot once the node is idle) leave a node usable for the job that holds it.
//
// libslurm runs in a forked child with a deadline, as for NodeAddress (node_address.h): its
// fatal() on a missing configuration and its retries against an unreachable slurmctld can neither
// end nor hang the caller. One query is one slurm_load_node RPC (every node of the cluster).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::slurm {

struct NodeState {
  std::string name;
  std::string state;  // scontrol's form, see above; "UNKNOWN" for a node slurmctld does not know
  bool healthy = false;
  std::string reason;  // the node's Reason= (set by an admin or by Slurm), or why it is unhealthy
};

// Interprets the node_state field of libslurm's node_info_t (enum node_states | NODE_STATE_*
// flags) and the node's reason. Pure: no Slurm needed. An unhealthy node without a reason gets
// one that names its state ("Slurm reports the node DOWN+NOT_RESPONDING").
NodeState DescribeNodeState(const std::string& name, uint32_t slurm_node_state,
                            const std::string& reason);

// The state of each of `names`, in that order, from slurmctld (slurm_load_node). A name slurmctld
// does not know is reported unhealthy with state "UNKNOWN". Errors: no readable slurm.conf (names
// SLURM_CONF), slurmctld unreachable or slow (10 s), the RPC failing (Slurm's message).
Result<std::vector<NodeState>> QueryNodeStates(const std::vector<std::string>& names);

}  // namespace strun::slurm
