// The job topology from the variables srun exports to every task.
#include "strun/slurm/topology.h"

#include <charconv>
#include <limits>
#include <numeric>

#include "strun/slurm/hostlist.h"

namespace strun::slurm {
namespace {

// A variable that was read, remembered by name so that errors can quote it.
struct Var {
  std::string name;
  std::string value;
  std::string Quote() const { return name + "=" + value; }
};

std::optional<Var> First(const Environment& env, std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (auto value = env.Get(name)) return Var{name, *value};
  }
  return std::nullopt;
}

Error Missing(std::string_view what) {
  return MakeError(std::string(what) +
                   " is not set; strun reads it from the environment srun gives each task: run "
                   "strun under srun (or outside Slurm with explicit --nnodes/--node-rank)");
}

Result<int> ParseInt(std::string_view text, long min, std::string_view context) {
  long value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) {
    return MakeError(std::string(context) + " is not a whole number");
  }
  if (value < min || value > std::numeric_limits<int>::max()) {
    return MakeError(std::string(context) + " is out of range (expected at least " +
                     std::to_string(min) + ")");
  }
  return static_cast<int>(value);
}

Result<int> VarInt(const Var& var, long min) { return ParseInt(var.value, min, var.Quote()); }

// Reads an optional integer variable; `fallback` when unset.
Result<int> OptionalInt(const Environment& env, const char* name, int fallback, long min) {
  auto value = env.Get(name);
  if (!value) return fallback;
  return VarInt(Var{name, *value}, min);
}

Result<std::vector<std::string>> SplitGpus(const Var& var) {
  std::vector<std::string> gpus;
  if (var.value.empty()) return gpus;
  size_t start = 0;
  while (true) {
    size_t comma = var.value.find(',', start);
    std::string item = var.value.substr(start, comma == std::string::npos ? comma : comma - start);
    if (item.empty()) return MakeError(var.Quote() + " has an empty entry");
    gpus.push_back(std::move(item));
    if (comma == std::string::npos) return gpus;
    start = comma + 1;
  }
}

// 'text', built by appending: `"'" + std::string(...)` trips a GCC 12 -Wrestrict false positive
// in release builds.
std::string InQuotes(std::string_view text) {
  std::string out = "'";
  out += text;
  out += '\'';
  return out;
}

}  // namespace

int JobTopology::FirstRankOfNode(int n) const {
  int rank = 0;
  for (int i = 0; i < n && i < static_cast<int>(tasks_per_node.size()); ++i) {
    rank += tasks_per_node[static_cast<size_t>(i)];
  }
  return rank;
}

bool InSlurmStep(const Environment& env) {
  return env.Has("SLURM_PROCID") && (env.Has("SLURM_JOB_ID") || env.Has("SLURM_JOBID"));
}

Result<std::vector<int>> ExpandTasksPerNode(std::string_view value, std::string_view variable) {
  auto bad = [&](std::string_view why) {
    return MakeError(std::string(variable) + "=" + std::string(value) + " is malformed (" +
                     std::string(why) + "); expected counts like 4(x2),3");
  };
  std::vector<int> counts;
  if (value.empty()) return bad("empty");
  size_t pos = 0;
  while (true) {
    size_t comma = value.find(',', pos);
    std::string_view item =
        value.substr(pos, comma == std::string_view::npos ? comma : comma - pos);
    std::string_view count_text = item;
    int repeat = 1;
    if (size_t paren = item.find('('); paren != std::string_view::npos) {
      count_text = item.substr(0, paren);
      std::string_view rep = item.substr(paren + 1);
      if (rep.size() < 3 || rep.front() != 'x' || rep.back() != ')') {
        return bad(InQuotes(item) + " is not N or N(xM)");
      }
      auto r = ParseInt(rep.substr(1, rep.size() - 2), 1, "the repeat count in " + InQuotes(item));
      if (!r.ok()) return bad(r.error().message);
      repeat = *r;
    }
    auto count = ParseInt(count_text, 1, InQuotes(count_text));
    if (!count.ok()) return bad(count.error().message);
    // A job has at most a few hundred thousand nodes; bound the expansion so a typo cannot
    // allocate gigabytes.
    if (counts.size() + static_cast<size_t>(repeat) > (size_t{1} << 20)) {
      return bad("more than 1048576 nodes");
    }
    counts.insert(counts.end(), static_cast<size_t>(repeat), *count);
    if (comma == std::string_view::npos) return counts;
    pos = comma + 1;
  }
}

Result<JobTopology> TopologyFromSlurmEnv(const Environment& env) {
  JobTopology t;
  t.source = "slurm";

  auto job_id = First(env, {"SLURM_JOB_ID", "SLURM_JOBID"});
  if (!job_id) return Missing("SLURM_JOB_ID");
  if (job_id->value.empty()) return MakeError(job_id->name + " is empty");
  t.job_id = job_id->value;
  if (auto step = First(env, {"SLURM_STEP_ID", "SLURM_STEPID"})) t.step_id = step->value;

  auto procid = First(env, {"SLURM_PROCID"});
  if (!procid) return Missing("SLURM_PROCID");
  auto rank = VarInt(*procid, 0);
  if (!rank.ok()) return rank.error();
  t.rank = *rank;

  auto localid = First(env, {"SLURM_LOCALID"});
  if (!localid) return Missing("SLURM_LOCALID");
  auto local_rank = VarInt(*localid, 0);
  if (!local_rank.ok()) return local_rank.error();
  t.local_rank = *local_rank;

  auto nodeid = First(env, {"SLURM_NODEID"});
  if (!nodeid) return Missing("SLURM_NODEID");
  auto node_rank = VarInt(*nodeid, 0);
  if (!node_rank.ok()) return node_rank.error();
  t.node_rank = *node_rank;

  // The step's view wins over the job's: an srun inside an allocation may use part of it.
  auto nodelist = First(env, {"SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST"});
  if (!nodelist) return Missing("SLURM_STEP_NODELIST (or SLURM_JOB_NODELIST)");
  auto nodes = ExpandHostlist(nodelist->value);
  if (!nodes.ok()) return MakeError(nodelist->name + ": " + nodes.error().message);
  if (nodes->empty()) return MakeError(nodelist->Quote() + " names no node");
  t.nodes = std::move(*nodes);

  auto tpn = First(env, {"SLURM_STEP_TASKS_PER_NODE", "SLURM_TASKS_PER_NODE"});
  if (!tpn) return Missing("SLURM_STEP_TASKS_PER_NODE (or SLURM_TASKS_PER_NODE)");
  auto tasks = ExpandTasksPerNode(tpn->value, tpn->name);
  if (!tasks.ok()) return tasks.error();
  t.tasks_per_node = std::move(*tasks);

  const int listed_nodes = static_cast<int>(t.nodes.size());
  t.num_nodes = listed_nodes;
  if (auto nnodes = First(env, {"SLURM_STEP_NUM_NODES", "SLURM_NNODES", "SLURM_JOB_NUM_NODES"})) {
    auto n = VarInt(*nnodes, 1);
    if (!n.ok()) return n.error();
    if (*n != listed_nodes) {
      return MakeError(nnodes->Quote() + " but " + nodelist->Quote() + " lists " +
                       std::to_string(listed_nodes) + " nodes");
    }
  }
  if (static_cast<int>(t.tasks_per_node.size()) != listed_nodes) {
    return MakeError(tpn->Quote() + " describes " + std::to_string(t.tasks_per_node.size()) +
                     " nodes but " + nodelist->Quote() + " lists " + std::to_string(listed_nodes));
  }

  // Summed wide: each count fits an int, their sum need not (ranks are ints).
  const long long sum = std::accumulate(t.tasks_per_node.begin(), t.tasks_per_node.end(), 0LL);
  if (sum > std::numeric_limits<int>::max()) {
    return MakeError(tpn->Quote() + " adds up to " + std::to_string(sum) + " tasks, more than " +
                     std::to_string(std::numeric_limits<int>::max()) +
                     "; it is not a Slurm step's task layout: run strun under srun");
  }
  const int total_tasks = static_cast<int>(sum);
  t.world_size = total_tasks;
  if (auto ntasks = First(env, {"SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "SLURM_NPROCS"})) {
    auto n = VarInt(*ntasks, 1);
    if (!n.ok()) return n.error();
    if (*n != total_tasks) {
      return MakeError(ntasks->Quote() + " but " + tpn->Quote() + " adds up to " +
                       std::to_string(total_tasks) + " tasks");
    }
  }

  if (t.rank >= t.world_size) {
    return MakeError(procid->Quote() + " but the step has " + std::to_string(t.world_size) +
                     " tasks (" + tpn->Quote() + ")");
  }
  if (t.node_rank >= t.num_nodes) {
    return MakeError(nodeid->Quote() + " but the step has " + std::to_string(t.num_nodes) +
                     " nodes (" + nodelist->Quote() + ")");
  }
  t.local_world_size = t.tasks_per_node[static_cast<size_t>(t.node_rank)];
  if (t.local_rank >= t.local_world_size) {
    return MakeError(localid->Quote() + " but node " + std::to_string(t.node_rank) + " runs " +
                     std::to_string(t.local_world_size) + " tasks (" + tpn->Quote() + ")");
  }

  const std::string& listed_name = t.nodes[static_cast<size_t>(t.node_rank)];
  t.node_name = listed_name;
  if (auto nodename = First(env, {"SLURMD_NODENAME"})) {
    if (nodename->value != listed_name) {
      return MakeError(nodename->Quote() + " but " + nodeid->Quote() + " is " + listed_name +
                       " in " + nodelist->Quote());
    }
  }

  auto gpus_on_node = OptionalInt(env, "SLURM_GPUS_ON_NODE", 0, 0);
  if (!gpus_on_node.ok()) return gpus_on_node.error();
  t.gpus_on_node = *gpus_on_node;
  if (auto gpus = First(env, {"SLURM_STEP_GPUS", "SLURM_JOB_GPUS"})) {
    auto list = SplitGpus(*gpus);
    if (!list.ok()) return list.error();
    t.gpus = std::move(*list);
  }
  auto cpus = OptionalInt(env, "SLURM_CPUS_PER_TASK", 0, 1);
  if (!cpus.ok()) return cpus.error();
  t.cpus_per_task = *cpus;
  auto restarts = OptionalInt(env, "SLURM_RESTART_COUNT", 0, 0);
  if (!restarts.ok()) return restarts.error();
  t.restart_count = *restarts;
  return t;
}

}  // namespace strun::slurm
