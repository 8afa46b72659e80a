#include "strun/launcher/plan.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "strun/launcher/crypto.h"

namespace strun::launcher {
namespace {

std::optional<int> ToCount(const std::string& s) {
  if (s.empty() || s.size() > 9) return std::nullopt;
  for (char c : s)
    if (c < '0' || c > '9') return std::nullopt;
  return std::atoi(s.c_str());
}

int CountDirEntries(const char* dir, const std::function<bool(const std::string&)>& accept) {
  DIR* d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != ".." && accept(name)) ++n;
  }
  closedir(d);
  return n;
}

int CountGpus(const std::map<std::string, std::string>& env,
              const std::optional<slurm::JobTopology>& topology) {
  if (auto it = env.find("CUDA_VISIBLE_DEVICES"); it != env.end()) {
    const std::string& v = it->second;
    if (v.empty() || v == "NoDevFiles" || v == "-1") return 0;
    int n = 1;
    for (char c : v) n += c == ',';
    return n;
  }
  if (topology && !topology->gpus.empty()) return int(topology->gpus.size());
  if (topology && topology->gpus_on_node > 0) return topology->gpus_on_node;
  int n = CountDirEntries("/proc/driver/nvidia/gpus", [](const std::string&) { return true; });
  if (n > 0) return n;
  return CountDirEntries("/dev", [](const std::string& name) {
    return name.size() > 6 && name.rfind("nvidia", 0) == 0 &&
           std::all_of(name.begin() + 6, name.end(), [](char c) { return c >= '0' && c <= '9'; });
  });
}

std::string Uuid4() {
  auto bytes = RandomBytes(16);
  std::string b = bytes ? *bytes : std::string(16, '\0');
  b[6] = char((b[6] & 0x0f) | 0x40);
  b[8] = char((b[8] & 0x3f) | 0x80);
  std::string hex = ToHex(b);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

std::string StepVariable(const slurm::JobTopology& t, const char* step_var, const char* job_var,
                         const std::map<std::string, std::string>& env) {
  return env.count(step_var) ? step_var : job_var;
}

}  // namespace

const char* LaunchModeName(LaunchMode m) {
  switch (m) {
    case LaunchMode::kStandalone:
      return "standalone";
    case LaunchMode::kStatic:
      return "static";
    case LaunchMode::kSlurmPerNode:
      return "slurm, one strun per node";
    case LaunchMode::kSlurmPerTask:
      return "slurm, one strun per task";
  }
  return "?";
}

namespace {

Result<int> ResolveUnbounded(const std::string& value,
                             const std::map<std::string, std::string>& env,
                             const std::optional<slurm::JobTopology>& topology) {
  if (auto n = ToCount(value)) {
    if (*n < 1) return MakeError("--nproc-per-node=" + value + ": must be at least 1");
    return *n;
  }
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (value == "cpu") return int(std::max(1L, cpus));
  if (value == "gpu") {
    int n = CountGpus(env, topology);
    if (n == 0)
      return MakeError(
          "--nproc-per-node=gpu: no GPU found (CUDA_VISIBLE_DEVICES, SLURM_STEP_GPUS, "
          "/proc/driver/nvidia/gpus); request GPUs from Slurm or give a number");
    return n;
  }
  if (value == "auto") {
    int n = CountGpus(env, topology);
    return n > 0 ? n : int(std::max(1L, cpus));
  }
  return MakeError(
      "--nproc-per-node=" + value +
      ": unsupported value; use a number, gpu, cpu or auto (strun counts NVIDIA GPUs only)");
}

}  // namespace

Result<int> ResolveNprocPerNode(const std::string& value,
                                const std::map<std::string, std::string>& env,
                                const std::optional<slurm::JobTopology>& topology) {
  auto too_many = [&](const std::string& shown) {
    return MakeError("--nproc-per-node=" + shown + ": more than " +
                     std::to_string(kMaxNprocPerNode) +
                     " workers per strun; give a smaller number (one worker per GPU, or per core)");
  };
  // A typo such as 99999999 must be an error, not 10^8 workers (ToCount takes up to 9 digits).
  if (value.size() > 9 && value.find_first_not_of("0123456789") == std::string::npos)
    return too_many(value);
  auto n = ResolveUnbounded(value, env, topology);
  if (n && *n > kMaxNprocPerNode)
    return too_many(value == std::to_string(*n) ? value : value + " (" + std::to_string(*n) + ")");
  return n;
}

Result<LaunchPlan> MakeLaunchPlan(const PlanInputs& in, std::vector<std::string>* warnings,
                                  bool* usage_error) {
  // Errors about flags (those naming one first) are usage errors (plan.h).
  auto usage = [usage_error](std::string message) {
    if (usage_error) *usage_error = true;
    return MakeError(std::move(message));
  };
  const LaunchOptions& o = *in.options;
  LaunchPlan p;
  p.node_name = in.hostname;
  if (auto it = o.rdzv_configs.find("join_timeout"); it != o.rdzv_configs.end()) {
    char* end = nullptr;
    double v = std::strtod(it->second.c_str(), &end);
    if (end == it->second.c_str() || *end || v <= 0)
      return usage("--rdzv-conf join_timeout=" + it->second +
                   ": expected a positive number of seconds");
    p.join_timeout_s = v;
  }

  if (in.topology) {
    const slurm::JobTopology& t = *in.topology;
    const std::string nodes_var = StepVariable(t, "SLURM_STEP_NUM_NODES", "SLURM_NNODES", in.env);
    const std::string tasks_var = StepVariable(t, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", in.env);
    const std::string tpn_var =
        StepVariable(t, "SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE", in.env);
    auto env_of = [&](const std::string& var) {
      auto it = in.env.find(var);
      return var + "=" + (it == in.env.end() ? std::string("?") : it->second);
    };
    p.node_name = t.node_name.empty() ? in.hostname : t.node_name;
    if (o.standalone && t.world_size > 1)
      return usage("--standalone runs one node on its own, but this Slurm step has " +
                   std::to_string(t.world_size) + " tasks on " + std::to_string(t.num_nodes) +
                   " nodes (" + env_of(tasks_var) +
                   "); drop --standalone: strun takes the topology from Slurm");
    if (o.rdzv_backend != "static" || !o.rdzv_endpoint.empty())
      warnings->push_back(
          "--rdzv-backend/--rdzv-endpoint are ignored under Slurm: the agents coordinate "
          "through strun's own service on the step's first node");
    if (o.Explicit("nnodes") && (t.num_nodes < o.min_nodes || t.num_nodes > o.max_nodes))
      return usage("--nnodes=" + o.nnodes + " but the Slurm step has " +
                   std::to_string(t.num_nodes) + " nodes (" + env_of(nodes_var) +
                   "); drop --nnodes or change srun -N");
    if (o.Explicit("node_rank") && o.node_rank != t.node_rank)
      return usage("--node-rank=" + std::to_string(o.node_rank) + " but this task runs on node " +
                   std::to_string(t.node_rank) + " of the step (SLURM_NODEID=" +
                   std::to_string(t.node_rank) + "); drop --node-rank: strun takes it from Slurm");
    const bool per_task = t.world_size > t.num_nodes;
    if (per_task) {
      p.mode = LaunchMode::kSlurmPerTask;
      if (o.Explicit("nproc_per_node")) {
        auto n = ResolveNprocPerNode(o.nproc_per_node, in.env, in.topology);
        if (!n) return usage(n.error().message);
        if (*n != 1 && *n != t.local_world_size)
          return usage(
              "--nproc-per-node=" + o.nproc_per_node + " but Slurm starts " +
              std::to_string(t.local_world_size) + " tasks on this node (" + env_of(tpn_var) +
              "): each strun task then runs one worker. Either use srun --ntasks-per-node=1 and "
              "let strun start the workers, or drop --nproc-per-node");
      }
      p.group_rank = t.node_rank;
      p.group_world_size = t.num_nodes;
      p.local_world_size = t.local_world_size;
      p.world_size = t.world_size;
      p.first_local_rank = t.local_rank;
      p.num_workers = 1;
      p.first_rank = t.rank;
      p.agent_index = t.rank;
      p.num_agents = t.world_size;
    } else {
      p.mode = LaunchMode::kSlurmPerNode;
      auto n = ResolveNprocPerNode(o.nproc_per_node, in.env, in.topology);
      if (!n) return usage(n.error().message);
      p.group_rank = t.node_rank;
      p.group_world_size = t.num_nodes;
      p.local_world_size = *n;
      p.world_size = *n * t.num_nodes;
      p.first_local_rank = 0;
      p.num_workers = *n;
      p.first_rank = t.node_rank * *n;
      p.agent_index = t.node_rank;
      p.num_agents = t.num_nodes;
    }
    if (t.nodes.empty())
      return MakeError(
          "the Slurm step has no node list (SLURM_STEP_NODELIST / SLURM_JOB_NODELIST)");
    const std::string& first = t.nodes[0];
    std::string addr_of = first;
    if (o.Explicit("master_addr")) {
      auto pos = std::find(t.nodes.begin(), t.nodes.end(), o.master_addr);
      if (pos != t.nodes.end() && pos != t.nodes.begin())
        return usage("--master-addr=" + o.master_addr + " names node " +
                     std::to_string(pos - t.nodes.begin()) +
                     " of the step, but global rank 0 runs on " + first +
                     " (the step's first node); drop --master-addr");
      if (pos == t.nodes.end()) addr_of.clear();  // an address of the user's choosing: keep it
    }
    if (addr_of.empty()) {
      p.master_addr = o.master_addr;
    } else if (in.master_addr_from_rank0 && t.rank != 0) {
      p.master_addr.clear();  // filled by the PMIx bootstrap
    } else if (p.num_agents == 1 && in.node_address == nullptr) {
      p.master_addr = "127.0.0.1";
    } else {
      // Under PMIx the task of rank 0 resolves the node it runs on (the step's first node with the
      // default distribution).
      const std::string& rank0_node =
          in.master_addr_from_rank0 && size_t(t.node_rank) < t.nodes.size()
              ? t.nodes[size_t(t.node_rank)]
              : first;
      auto a = in.node_address ? in.node_address(rank0_node)
                               : Result<std::string>(MakeError("no resolver"));
      if (!a) {
        if (p.num_agents > 1)
          return MakeError("cannot find an address for " + rank0_node +
                           ", the node of global rank 0: " + a.error().message +
                           "; pass --master-addr=<its address>");
        p.master_addr = "127.0.0.1";
      } else {
        p.master_addr = *a;
      }
    }
    if (o.Explicit("master_port")) p.master_port = o.master_port;
    p.run_id = o.Explicit("rdzv_id") ? o.rdzv_id : t.job_id;
    p.run_key = "slurm:" + t.job_id + "." + t.step_id.value_or("batch");
    return p;
  }

  // No Slurm.
  if (o.local_addr) p.master_addr = *o.local_addr;
  if (o.standalone) {
    if (o.Explicit("nnodes") && o.max_nodes > 1)
      return usage("--standalone runs one node on its own, but --nnodes=" + o.nnodes +
                   "; drop one of them");
    if (o.Explicit("node_rank") && o.node_rank != 0)
      return usage("--standalone runs one node on its own, but --node-rank=" +
                   std::to_string(o.node_rank));
    auto n = ResolveNprocPerNode(o.nproc_per_node, in.env, std::nullopt);
    if (!n) return usage(n.error().message);
    p.mode = LaunchMode::kStandalone;
    p.local_world_size = p.world_size = p.num_workers = *n;
    if (!o.local_addr) p.master_addr = "127.0.0.1";
    if (o.Explicit("master_port")) p.master_port = o.master_port;
    p.run_id = Uuid4();
    p.run_key = "standalone:" + p.run_id;
    return p;
  }
  if (o.min_nodes != o.max_nodes)
    return usage("--nnodes=" + o.nnodes +
                 ": elastic node ranges are not supported outside Slurm; give a fixed --nnodes=N");
  const int nnodes = o.max_nodes;
  p.master_addr = o.master_addr;
  if (o.rdzv_backend != "static") {
    if (!o.rdzv_endpoint.empty()) {
      std::string host = o.rdzv_endpoint;
      std::string port_text;
      if (!host.empty() && host[0] == '[') {  // [v6addr]:port
        auto close = host.find(']');
        if (close == std::string::npos)
          return usage("--rdzv-endpoint=" + o.rdzv_endpoint + ": unbalanced '['");
        if (close + 1 < host.size() && host[close + 1] == ':') port_text = host.substr(close + 2);
        host = host.substr(1, close - 1);
      } else if (auto colon = host.find(':');
                 colon != std::string::npos && host.find(':', colon + 1) == std::string::npos) {
        port_text = host.substr(colon + 1);
        host = host.substr(0, colon);
      }
      int port = 29400;
      if (!port_text.empty()) {
        auto v = ToCount(port_text);
        if (!v || *v > 65535)
          return usage("--rdzv-endpoint=" + o.rdzv_endpoint + ": bad port '" + port_text + "'");
        port = *v;
      }
      if (!o.Explicit("master_addr")) p.master_addr = host == "localhost" ? "127.0.0.1" : host;
      if (port != 0) p.coordination_port = port;
    }
    if (nnodes > 1 && !o.Explicit("node_rank"))
      return usage("--rdzv-backend=" + o.rdzv_backend + " with --nnodes=" + o.nnodes +
                   ": strun assigns node ranks statically; pass --node-rank on every node (or run "
                   "under Slurm)");
  } else if (!o.rdzv_endpoint.empty()) {
    warnings->push_back(
        "--rdzv-endpoint is ignored with --rdzv-backend=static (torchrun uses "
        "--master-addr/--master-port)");
  }
  if (o.node_rank >= nnodes)
    return usage("--node-rank=" + std::to_string(o.node_rank) + " but --nnodes=" + o.nnodes +
                 ": node ranks go from 0 to " + std::to_string(nnodes - 1));
  auto n = ResolveNprocPerNode(o.nproc_per_node, in.env, std::nullopt);
  if (!n) return usage(n.error().message);
  p.mode = nnodes == 1 ? LaunchMode::kStandalone : LaunchMode::kStatic;
  p.group_rank = o.node_rank;
  p.group_world_size = nnodes;
  p.local_world_size = *n;
  p.world_size = *n * nnodes;
  p.num_workers = *n;
  p.first_rank = o.node_rank * *n;
  p.agent_index = o.node_rank;
  p.num_agents = nnodes;
  // Without an explicit port agent 0 picks a free one and tells the others (torchrun 2.x: a free
  // port for one node, 29500 for several; a fixed port collides between jobs sharing a node).
  if (o.Explicit("master_port")) p.master_port = o.master_port;
  p.run_id = o.rdzv_id;
  p.run_key = "static:" + o.rdzv_id + "|" + p.master_addr + "|" + std::to_string(nnodes);
  return p;
}

}  // namespace strun::launcher
