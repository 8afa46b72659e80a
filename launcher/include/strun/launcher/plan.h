// strun/launcher/plan.h: who runs what. Command-line options plus the Slurm job step (if any)
// become a LaunchPlan: how many workers this strun starts, their ranks, and how the agents of the
// job find each other.
//
// Modes:
//  (a) Slurm, one task per node (`srun --ntasks-per-node=1 strun --nproc-per-node=4 ...`): node
//      rank, node count and node order come from the step; RANK = node_rank * nproc + local_rank.
//  (b) Slurm, several tasks per node (`srun --ntasks-per-node=4 strun ...`): each strun runs one
//      worker with RANK = SLURM_PROCID, LOCAL_RANK = SLURM_LOCALID, LOCAL_WORLD_SIZE = the tasks on
//      its node, WORLD_SIZE = SLURM_NTASKS, GROUP_RANK = SLURM_NODEID. --nproc-per-node must then
//      be 1 (or absent).
//  Under `srun --mpi=pmix` the topology of (a) and (b) comes from PMIx instead, checked against
//  SLURM_* (pmix_bootstrap.h), and the master address and coordination secret come from rank 0.
//  (c) No Slurm: --standalone (one node), or --nnodes N --node-rank R --master-addr A as with
//      torchrun's static rendezvous.
// Under Slurm, explicit --nnodes, --node-rank, --nproc-per-node (mode b), --standalone or a
// --master-addr naming another node of the step that contradict the step are errors naming the
// Slurm variable. An explicit --master-addr that names the step's first node is replaced by that
// node's real address (node names need not resolve); any other explicit address is used as given.
//
// Rendezvous flags: strun always uses its own coordination service (coordination.h). Under Slurm
// --rdzv-backend/--rdzv-endpoint/--rdzv-conf are ignored (a warning says so). Without Slurm,
// `--rdzv-backend=c10d --rdzv-endpoint=HOST[:PORT]` makes HOST the master address and PORT the
// coordination port (torchrun's default 29400), but node ranks must still be given with
// --node-rank: elastic membership (--nnodes MIN:MAX with MIN<MAX outside Slurm) is not supported.
// rdzv_conf join_timeout (seconds, default 600) bounds how long agents wait for each other.
//
// TORCHELASTIC_RUN_ID is --rdzv-id when given, a random UUID with --standalone (as torchrun),
// else SLURM_JOB_ID under Slurm, else "none".
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "strun/launcher/options.h"
#include "strun/result.h"
#include "strun/slurm/topology.h"

namespace strun::launcher {

enum class LaunchMode { kStandalone, kStatic, kSlurmPerNode, kSlurmPerTask };
const char* LaunchModeName(LaunchMode m);

struct LaunchPlan {
  LaunchMode mode = LaunchMode::kStandalone;
  // The worker group, as the workers see it.
  int group_rank = 0;        // GROUP_RANK: this node's index
  int group_world_size = 1;  // GROUP_WORLD_SIZE: number of nodes
  int local_world_size = 1;  // LOCAL_WORLD_SIZE
  int world_size = 1;        // WORLD_SIZE
  // The workers this strun starts: local ranks first_local_rank .. +num_workers-1, whose global
  // ranks are first_rank .. +num_workers-1.
  int first_local_rank = 0;
  int num_workers = 1;
  int first_rank = 0;

  // The agents: every strun of the job is one; agent 0 hosts the coordination service and the
  // worker of global rank 0.
  int agent_index = 0;
  int num_agents = 1;

  std::string node_name;  // for messages
  std::string run_id;     // TORCHELASTIC_RUN_ID
  std::string run_key;    // identifies this launch for the coordination secret (job.step)
  // Where agent 0 (and global rank 0) is. Agents connect there; agent 0 tells the others the final
  // MASTER_ADDR in its start message.
  std::string master_addr;
  std::optional<int> master_port;  // explicit --master-port; otherwise agent 0 picks a free port
  std::optional<int> coordination_port;  // from --rdzv-endpoint; otherwise derived (coordination.h)
  double join_timeout_s = 600;
  // The coordination secret agreed through PMIx (pmix_bootstrap.h); used unless STRUN_JOB_SECRET
  // is set; empty: the user's secret file (coordination.h).
  std::string job_secret;
};

struct PlanInputs {
  const LaunchOptions* options = nullptr;
  std::map<std::string, std::string> env;
  std::optional<slurm::JobTopology> topology;  // set when running as a task of a Slurm step
  // Resolves a node name to an address (slurm::NodeAddress in strun; a fake in tests).
  std::function<Result<std::string>(const std::string&)> node_address;
  std::string hostname;  // this machine, for messages
  // Under PMIx only the task of global rank 0 resolves the master address; the others leave it
  // empty and learn it from rank 0 (pmix_bootstrap.h).
  bool master_addr_from_rank0 = false;
};

// `usage_error`, when given, is set when the error is about the command line (a flag's value, or
// flags that contradict each other or the Slurm step): strun exits 2 for those, 1 for the others.
Result<LaunchPlan> MakeLaunchPlan(const PlanInputs& in, std::vector<std::string>* warnings,
                                  bool* usage_error = nullptr);

// The most workers one strun starts (--nproc-per-node, also as resolved from cpu/gpu/auto): far
// above any node's GPUs or cores, low enough that workers x nodes (at most 2^20 under Slurm,
// 10^6 with --nnodes) stays within WORLD_SIZE's int.
inline constexpr int kMaxNprocPerNode = 1024;

// --nproc-per-node: an integer in [1, kMaxNprocPerNode], or gpu / cpu / auto. GPUs are counted
// without CUDA: CUDA_VISIBLE_DEVICES, else the Slurm step's GPUs, else /proc/driver/nvidia/gpus,
// else /dev/nvidiaN. "xpu" and other accelerators are errors.
Result<int> ResolveNprocPerNode(const std::string& value,
                                const std::map<std::string, std::string>& env,
                                const std::optional<slurm::JobTopology>& topology);

}  // namespace strun::launcher
