// The Slurm step that the launch plan and PMIx bootstrap tests run in: two nodes, nid001 and
// nid002, with the same number of tasks each.
#pragma once

#include <string>

#include "strun/slurm/topology.h"

namespace strun::launcher {

// Job 77, step 0: 2 nodes x `tasks_per_node` tasks, seen from task `rank`; `source` is where the
// values came from ("slurm", "pmix", or "" for unset).
inline slurm::JobTopology TwoNodeStep(int tasks_per_node, int rank, const std::string& source) {
  slurm::JobTopology t;
  t.source = source;
  t.job_id = "77";
  t.step_id = "0";
  t.num_nodes = 2;
  t.nodes = {"nid001", "nid002"};
  t.tasks_per_node = {tasks_per_node, tasks_per_node};
  t.world_size = 2 * tasks_per_node;
  t.rank = rank;
  t.node_rank = rank / tasks_per_node;
  t.local_rank = rank % tasks_per_node;
  t.local_world_size = tasks_per_node;
  t.node_name = t.nodes[size_t(t.node_rank)];
  return t;
}

}  // namespace strun::launcher
