// Fuzzes the job topology read from SLURM_* variables (slurm/topology.h). The input is the
// environment, one NAME=VALUE per line; an accepted topology must be self-consistent, as the
// launcher indexes node and task arrays with it.
#include <cstdint>
#include <map>

#include "fuzz_util.h"
#include "strun/slurm/topology.h"

using strun::Environment;
using strun::slurm::JobTopology;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::map<std::string, std::string> vars;
  for (std::string_view line : strun::fuzz::Split(strun::fuzz::AsText(data, size), "\n")) {
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    vars.emplace(std::string(line.substr(0, eq)), std::string(line.substr(eq + 1)));
  }
  const Environment env(std::move(vars));
  auto topology = strun::slurm::TopologyFromSlurmEnv(env);
  if (!topology.ok()) {
    FUZZ_CHECK(!topology.error().message.empty(), "an error without a message");
    return 0;
  }
  const JobTopology& t = *topology;
  FUZZ_CHECK(t.num_nodes >= 1 && static_cast<size_t>(t.num_nodes) == t.nodes.size(),
             "num_nodes does not match the node list");
  FUZZ_CHECK(t.tasks_per_node.size() == t.nodes.size(), "tasks_per_node has another length");
  FUZZ_CHECK(t.node_rank >= 0 && t.node_rank < t.num_nodes, "node_rank outside the nodes");
  FUZZ_CHECK(t.local_world_size == t.tasks_per_node[static_cast<size_t>(t.node_rank)],
             "local_world_size is not this node's task count");
  FUZZ_CHECK(t.local_rank >= 0 && t.local_rank < t.local_world_size, "local_rank out of range");
  FUZZ_CHECK(t.rank >= 0 && t.rank < t.world_size, "rank out of range");
  FUZZ_CHECK(t.node_name == t.nodes[static_cast<size_t>(t.node_rank)], "node_name mismatch");
  int64_t total = 0;
  for (int tasks : t.tasks_per_node) {
    FUZZ_CHECK(tasks >= 1, "a node with no tasks");
    total += tasks;
  }
  FUZZ_CHECK(total == t.world_size, "world_size is not the sum of tasks_per_node");
  FUZZ_CHECK(t.FirstRankOfNode(t.num_nodes) == t.world_size, "FirstRankOfNode disagrees");
  return 0;
}
