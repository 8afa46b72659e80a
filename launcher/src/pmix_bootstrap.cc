// The PMIx bootstrap of the agents (pmix_bootstrap.h).
#include "strun/launcher/pmix_bootstrap.h"

#include <nlohmann/json.hpp>

#include "strun/launcher/coordination.h"

namespace strun::launcher {
namespace {

std::string JoinList(const auto& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ',';
    if constexpr (std::is_same_v<std::decay_t<decltype(item)>, int>)
      out += std::to_string(item);
    else
      out += item;
  }
  return out;
}

}  // namespace

Status CheckPmixAgainstSlurm(const slurm::JobTopology& p, const slurm::JobTopology& s) {
  auto differ = [](const char* what, const std::string& pv, const char* var,
                   const std::string& sv) {
    return MakeError(
        std::string("PMIx and Slurm disagree on the ") + what + ": PMIx says " + pv + ", " + var +
        "=" + sv +
        "; strun cannot tell which is right (is this task's environment from another step?)");
  };
  if (p.rank != s.rank)
    return differ("global rank", std::to_string(p.rank), "SLURM_PROCID", std::to_string(s.rank));
  if (p.world_size != s.world_size)
    return differ("number of tasks", std::to_string(p.world_size), "SLURM_NTASKS",
                  std::to_string(s.world_size));
  if (p.local_rank != s.local_rank)
    return differ("local rank", std::to_string(p.local_rank), "SLURM_LOCALID",
                  std::to_string(s.local_rank));
  if (p.node_rank != s.node_rank)
    return differ("node index", std::to_string(p.node_rank), "SLURM_NODEID",
                  std::to_string(s.node_rank));
  if (p.num_nodes != s.num_nodes)
    return differ("number of nodes", std::to_string(p.num_nodes), "SLURM_NNODES",
                  std::to_string(s.num_nodes));
  if (p.nodes != s.nodes)
    return differ("node list", JoinList(p.nodes), "SLURM_STEP_NODELIST", JoinList(s.nodes));
  if (p.tasks_per_node != s.tasks_per_node)
    return differ("tasks per node", JoinList(p.tasks_per_node), "SLURM_STEP_TASKS_PER_NODE",
                  JoinList(s.tasks_per_node));
  if (p.local_world_size != s.local_world_size)
    return differ("tasks on this node", std::to_string(p.local_world_size),
                  "SLURM_STEP_TASKS_PER_NODE", std::to_string(s.local_world_size));
  return {};
}

Status PmixBootstrap(KeyValueExchange& x, int rank, Result<LaunchPlan>* plan) {
  if (rank == 0) {
    nlohmann::json pub;
    if (!plan->ok()) {
      pub["error"] = plan->error().message;
    } else if ((*plan)->agent_index != 0) {
      pub["error"] =
          "PMIx rank 0 is agent " + std::to_string((*plan)->agent_index) +
          " of the launch, not agent 0; use the default task distribution (srun -m block)";
    } else if ((*plan)->master_addr.empty()) {
      pub["error"] = "the task of global rank 0 found no master address";
    } else {
      auto secret = NewJobSecret();
      if (!secret) {
        pub["error"] = secret.error().message;
      } else {
        pub = {{"master_addr", (*plan)->master_addr}, {"secret", *secret}};
      }
    }
    if (auto st = x.Put(kPmixBootstrapKey, pub.dump()); !st) return st;
  }
  if (auto st = x.Fence(); !st) return st;
  if (!plan->ok()) return plan->error();
  auto text = x.Get(0, kPmixBootstrapKey);
  if (!text)
    return MakeError("reading rank 0's bootstrap data through PMIx: " + text.error().message);
  nlohmann::json got = nlohmann::json::parse(*text, nullptr, false);
  if (!got.is_object()) return MakeError("rank 0 published malformed bootstrap data through PMIx");
  if (got.contains("error"))
    return rank == 0 ? MakeError(got["error"].get<std::string>())
                     : MakeError("the task of rank 0 failed: " + got["error"].get<std::string>());
  if (!got.contains("master_addr") || !got["master_addr"].is_string() || !got.contains("secret") ||
      !got["secret"].is_string())
    return MakeError("rank 0's bootstrap data through PMIx lacks master_addr or secret");
  (*plan)->master_addr = got["master_addr"].get<std::string>();
  (*plan)->job_secret = got["secret"].get<std::string>();
  return {};
}

}  // namespace strun::launcher
