// strun/slurm/topology.h: where this process sits in a Slurm job step.
//
// TopologyFromSlurmEnv reads the variables srun sets for every task. The step-level variables
// (SLURM_STEP_NODELIST, SLURM_STEP_TASKS_PER_NODE, SLURM_STEP_NUM_NODES, SLURM_STEP_NUM_TASKS) win
// over the job-level ones (SLURM_JOB_NODELIST, SLURM_TASKS_PER_NODE, SLURM_NNODES, SLURM_NTASKS)
// because an srun inside an allocation may use a subset of it. Missing or inconsistent values are
// errors naming the variable, e.g. "SLURM_NODEID=5 but the step has 4 nodes (SLURM_STEP_NODELIST=
// nid[001-004])".
//
// Required: SLURM_JOB_ID, SLURM_PROCID, SLURM_LOCALID, SLURM_NODEID, a node list and a tasks per
// node value. The task and node counts, when set, must agree with those two (when unset they are
// derived from them); SLURMD_NODENAME, when set, must be the node SLURM_NODEID points at. GPUs,
// CPUs per task and the restart count are optional (0 or empty when unset) but must be valid when
// set.
//
// TopologyFromPmix (pmix.h) fills the same structure from a PMIx server.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "strun/environment.h"
#include "strun/result.h"

namespace strun::slurm {

struct JobTopology {
  std::string source;                  // "slurm" or "pmix": where the values came from
  std::string job_id;                  // SLURM_JOB_ID
  std::optional<std::string> step_id;  // SLURM_STEP_ID
  int rank = 0;                        // SLURM_PROCID: global task rank
  int local_rank = 0;                  // SLURM_LOCALID: task rank on this node
  int world_size = 1;                  // SLURM_NTASKS / SLURM_STEP_NUM_TASKS
  int node_rank = 0;                   // SLURM_NODEID: index of this node in `nodes`
  int num_nodes = 1;                   // SLURM_NNODES / SLURM_STEP_NUM_NODES
  std::vector<std::string> nodes;      // the step's nodes in Slurm's order (expanded host list)
  std::vector<int> tasks_per_node;     // one entry per node, expanded from "4(x2),3"
  int local_world_size = 1;            // tasks_per_node[node_rank]
  int gpus_on_node = 0;                // SLURM_GPUS_ON_NODE (0 when unset)
  std::vector<std::string> gpus;       // SLURM_STEP_GPUS or SLURM_JOB_GPUS, e.g. {"0","1"}
  int cpus_per_task = 0;               // SLURM_CPUS_PER_TASK (0 when unset)
  int restart_count = 0;               // SLURM_RESTART_COUNT (0 when unset)
  std::string node_name;               // SLURMD_NODENAME or nodes[node_rank]

  // Global rank of the first task on node `n` (tasks are laid out node by node in block order
  // only for the default distribution; use this only as a fallback when ranks are not exchanged).
  int FirstRankOfNode(int n) const;
};

// True when the environment looks like a task of a Slurm step (SLURM_PROCID and SLURM_JOB_ID set).
bool InSlurmStep(const Environment& env);

Result<JobTopology> TopologyFromSlurmEnv(const Environment& env);

// Expands SLURM_TASKS_PER_NODE syntax: "4(x2),3" -> {4,4,3}. `variable` names the variable for
// error messages.
Result<std::vector<int>> ExpandTasksPerNode(std::string_view value, std::string_view variable);

}  // namespace strun::slurm
