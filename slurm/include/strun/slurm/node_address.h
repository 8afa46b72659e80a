// strun/slurm/node_address.h: a real network address for a Slurm node.
//
// Order: the node's NodeAddr as slurmctld knows it (libslurm, slurm_load_node_single), then name
// resolution (getaddrinfo). A name that resolves nowhere is an error, never returned as-is.
#pragma once

#include <string>

#include "strun/result.h"

namespace strun::slurm {

// The address other nodes can use to reach `node_name`.
Result<std::string> NodeAddress(const std::string& node_name);

// Name resolution only (getaddrinfo); the numeric address as a string.
Result<std::string> ResolveHost(const std::string& host);

}  // namespace strun::slurm
