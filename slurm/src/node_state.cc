// Node states from slurmctld (node_state.h). The query runs libslurm in a forked child that
// writes one line per node into a pipe; the parent gives up after a deadline.
#include "strun/slurm/node_state.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <slurm/slurm.h>
#include <slurm/slurm_errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>

#include "strun/slurm/slurm_child.h"

namespace strun::slurm {
namespace {

// libslurm retries an unreachable controller for about 9 s before it gives up.

struct Flag {
  uint32_t bit;
  const char* name;
  bool unhealthy;
};

// In the order scontrol prints them.
constexpr Flag kFlags[] = {
    {NODE_STATE_CLOUD, "CLOUD", false},
    {NODE_STATE_COMPLETING, "COMPLETING", false},
    {NODE_STATE_DRAIN, "DRAIN", true},
    {NODE_STATE_DYNAMIC_FUTURE, "DYNAMIC_FUTURE", false},
    {NODE_STATE_DYNAMIC_NORM, "DYNAMIC_NORM", false},
    {NODE_STATE_INVALID_REG, "INVALID_REG", true},
    {NODE_STATE_FAIL, "FAIL", true},
    {NODE_STATE_MAINT, "MAINTENANCE", false},
    {NODE_STATE_NO_RESPOND, "NOT_RESPONDING", true},
    {NODE_STATE_PLANNED, "PLANNED", false},
    {NODE_STATE_POWER_DOWN, "POWER_DOWN", true},
    {NODE_STATE_POWER_DRAIN, "POWER_DRAIN", true},
    {NODE_STATE_POWERED_DOWN, "POWERED_DOWN", true},
    {NODE_STATE_POWERING_DOWN, "POWERING_DOWN", true},
    {NODE_STATE_POWERING_UP, "POWERING_UP", true},
    {NODE_STATE_POWER_UP, "POWER_UP", false},
    {NODE_STATE_REBOOT_ISSUED, "REBOOT_ISSUED", true},
    {NODE_STATE_REBOOT_REQUESTED, "REBOOT_REQUESTED", false},
    {NODE_STATE_RES, "RESERVED", false},
};

const char* BaseName(uint32_t base) {
  switch (base) {
    case NODE_STATE_DOWN:
      return "DOWN";
    case NODE_STATE_IDLE:
      return "IDLE";
    case NODE_STATE_ALLOCATED:
      return "ALLOCATED";
    case NODE_STATE_ERROR:
      return "ERROR";
    case NODE_STATE_MIXED:
      return "MIXED";
    case NODE_STATE_FUTURE:
      return "FUTURE";
    default:
      return "UNKNOWN";
  }
}

// One line per record: name, state bits, reason; tabs and newlines of the reason become spaces.
std::string Field(const char* s) {
  std::string out = s ? s : "";
  for (char& c : out)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return out;
}

// "+" then "name\tstate\treason\n" per node, or "-reason" (CallInSlurmChild's protocol).
Result<std::string> RunQuery() {
  return CallInSlurmChild("", [] {
    node_info_msg_t* info = nullptr;
    if (slurm_load_node(0, &info, SHOW_ALL) != SLURM_SUCCESS)
      return "-slurm_load_node failed: " + LastSlurmError();
    std::string reply = "+";
    for (uint32_t i = 0; info != nullptr && i < info->record_count; ++i) {
      const node_info_t& node = info->node_array[i];
      if (node.name == nullptr) continue;
      reply += Field(node.name) + "\t" + std::to_string(node.node_state) + "\t" +
               Field(node.reason) + "\n";
    }
    return reply;
  });
}

}  // namespace

NodeState DescribeNodeState(const std::string& name, uint32_t slurm_node_state,
                            const std::string& reason) {
  NodeState s;
  s.name = name;
  const uint32_t base = slurm_node_state & NODE_STATE_BASE;
  s.state = BaseName(base);
  s.healthy = base == NODE_STATE_IDLE || base == NODE_STATE_ALLOCATED || base == NODE_STATE_MIXED;
  for (const Flag& f : kFlags) {
    if (!(slurm_node_state & f.bit)) continue;
    s.state += std::string("+") + f.name;
    if (f.unhealthy) s.healthy = false;
  }
  s.reason = reason;
  if (!s.healthy && s.reason.empty()) s.reason = "Slurm reports the node " + s.state;
  return s;
}

Result<std::vector<NodeState>> QueryNodeStates(const std::vector<std::string>& names) {
  if (names.empty()) return std::vector<NodeState>{};
  auto reply = RunQuery();
  if (!reply.ok()) return reply.error();
  std::map<std::string, NodeState> known;
  std::istringstream in(*reply);
  std::string line;
  while (std::getline(in, line)) {
    size_t t1 = line.find('\t');
    size_t t2 = t1 == std::string::npos ? t1 : line.find('\t', t1 + 1);
    if (t2 == std::string::npos) continue;
    std::string name = line.substr(0, t1);
    uint32_t bits = uint32_t(std::strtoul(line.substr(t1 + 1, t2 - t1 - 1).c_str(), nullptr, 10));
    known[name] = DescribeNodeState(name, bits, line.substr(t2 + 1));
  }
  std::vector<NodeState> out;
  out.reserve(names.size());
  for (const std::string& name : names) {
    auto it = known.find(name);
    if (it != known.end()) {
      out.push_back(it->second);
      continue;
    }
    NodeState unknown;
    unknown.name = name;
    unknown.state = "UNKNOWN";
    unknown.healthy = false;
    unknown.reason = "slurmctld does not know a node named '" + name + "'";
    out.push_back(std::move(unknown));
  }
  return out;
}

}  // namespace strun::slurm
