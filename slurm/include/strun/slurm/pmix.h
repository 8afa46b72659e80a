// strun/slurm/pmix.h: the job topology and a key-value exchange through PMIx, for tasks started
// with `srun --mpi=pmix`.
//
// Slurm's PMIx plugin exports PMIX_RANK and PMIX_NAMESPACE; PMIX_NODE_RANK there is the *local*
// rank, so the node index comes from PMIX_NODEID (PMIx_Get with PMIX_NODEID), never from
// PMIX_NODE_RANK.
#pragma once

#include <memory>
#include <string>

#include "strun/environment.h"
#include "strun/result.h"
#include "strun/slurm/topology.h"

namespace strun::slurm {

// True when PMIx variables of a PMIx-enabled step are present (PMIX_RANK and PMIX_NAMESPACE).
bool InPmixStep(const Environment& env);

// A connection to the local PMIx server. PMIx_Init on Create, PMIx_Finalize on destruction.
class PmixSession {
 public:
  static Result<std::unique_ptr<PmixSession>> Create();
  ~PmixSession();
  PmixSession(const PmixSession&) = delete;
  PmixSession& operator=(const PmixSession&) = delete;

  // Rank, job size (PMIX_JOB_SIZE), local rank and size (PMIX_LOCAL_RANK, PMIX_LOCAL_SIZE), node
  // index (PMIX_NODEID), node list (PMIx_Resolve_nodes, put in SLURM_STEP_NODELIST's order when
  // that names the same nodes) and tasks per node (PMIx_Resolve_peers) from PMIx, checked for
  // consistency. `env` supplies what PMIx does not know (SLURM_JOB_ID, GPUs, restart count).
  // Verified on the local cluster with tests/slurm/strun-pmix-probe.
  Result<JobTopology> Topology(const Environment& env);

  // Publishes key=value for this rank (PMIx_Put with global scope, then PMIx_Commit).
  Status Put(const std::string& key, const std::string& value);
  // Blocks until every rank of the namespace has reached the fence, exchanging committed data.
  Status Fence();
  // Reads the value `rank` published under `key` (after a Fence).
  Result<std::string> Get(int rank, const std::string& key);

 private:
  struct Impl;
  explicit PmixSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strun::slurm
