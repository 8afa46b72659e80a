// strun/launcher/pmix_bootstrap.h: strun started with `srun --mpi=pmix`.
//
// Under PMIx the topology comes from PMIx (slurm/pmix.h) and is checked against SLURM_* where
// Slurm set them: any field on which the two disagree is an error naming both values. The agents
// then bootstrap through one PMIx put/commit/fence/get exchange instead of a shared secret file:
// PMIx rank 0 (always agent 0: in mode (a) the task of node 0, in mode (b) the task of global rank
// 0) publishes the master address (its own node's real address, the one the others connect to)
// and a fresh random per-job secret for the coordination service. Every task takes part in the
// fence even when it failed to plan its launch, so that an error never leaves the others waiting;
// an error of rank 0 reaches every task. Neither STRUN_JOB_SECRET nor a shared home directory is
// needed. PMIx keeps the exchanged data inside the job's step (slurmstepd's PMIx server).
#pragma once

#include <string>

#include "strun/launcher/plan.h"
#include "strun/result.h"
#include "strun/slurm/topology.h"

namespace strun::launcher {

// The part of PMIx the bootstrap needs (slurm::PmixSession in strun; an in-memory fake in tests).
class KeyValueExchange {
 public:
  virtual ~KeyValueExchange() = default;
  virtual Status Put(const std::string& key, const std::string& value) = 0;
  virtual Status Fence() = 0;
  virtual Result<std::string> Get(int rank, const std::string& key) = 0;
};

// An error naming the first field on which the PMIx and the SLURM_* topologies disagree.
Status CheckPmixAgainstSlurm(const slurm::JobTopology& pmix, const slurm::JobTopology& slurm);

// The key rank 0 publishes (JSON: {"master_addr", "secret"} or {"error"}).
inline constexpr const char* kPmixBootstrapKey = "strun.bootstrap.v1";

// Runs the exchange for the task of PMIx rank `rank` whose launch plan is `plan` (an error when
// this task could not plan; it still takes part). On success every task's plan carries rank 0's
// master_addr and job_secret. Returns this task's own error, or rank 0's.
Status PmixBootstrap(KeyValueExchange& exchange, int rank, Result<LaunchPlan>* plan);

}  // namespace strun::launcher
