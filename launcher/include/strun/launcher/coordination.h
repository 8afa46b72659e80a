// strun/launcher/coordination.h: how the agents (one strun per node, or per task) of one job act
// as one group, through the coordination service of libstrun_coord (coord_service.h, whose
// protocol is coord_protocol.h).
//
// Agent 0 (the strun on the step's first node that also runs global rank 0) hosts the service;
// every agent, agent 0 included, connects to it. A group of a single agent uses GroupState
// in-process, without network or secret.
//
// The job key: key = HMAC-SHA256(secret, "strun-coordination-v1|" + run key (Slurm job.step, or run
// id)). The secret is, in order: $STRUN_JOB_SECRET (strund or the batch script sets it; a process's
// environment is readable only by its user), else under `srun --mpi=pmix` a random one agent 0
// hands out through PMIx (LaunchPlan::job_secret, pmix_bootstrap.h), else the per-user secret file
// $STRUN_SECRET_FILE or ~/.strun/secret (home directories are shared across a cluster's nodes).
//
// Port: $STRUN_COORD_PORT, or the port of --rdzv-endpoint, else a list of 16 candidates in
// [20000, 32000) derived from the key; agent 0 binds the first free one and the others try them
// in turn until one authenticates.
//
// Hosted by strund (daemon/): when STRUN_COORD_HOST is set, no agent hosts the service; every
// agent connects to STRUN_COORD_HOST:STRUN_COORD_PORT and the run key is STRUN_COORD_RUN_KEY
// (the host picks one per launch, so agents of an old launch cannot join a new one). strund sets
// these with STRUN_JOB_SECRET in the step's environment.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "strun/launcher/coord_service.h"
#include "strun/launcher/plan.h"

namespace strun::launcher {

// The job key (see above) for an agent of `plan`.
inline Result<std::string> CoordinationKey(const LaunchPlan& plan, const EnvMap& env) {
  auto secret = JobSecret(env, plan.job_secret);
  if (!secret) return secret.error();
  // A service hosted by strund names the run key of its launch.
  auto run_key = env.find("STRUN_COORD_RUN_KEY");
  return DeriveCoordinationKey(
      *secret, run_key != env.end() && !run_key->second.empty() ? run_key->second : plan.run_key);
}

inline std::vector<int> CandidatePorts(const std::string& key, const EnvMap& env,
                                       const LaunchPlan& plan) {
  return CandidatePorts(key, env, plan.coordination_port);
}

}  // namespace strun::launcher
