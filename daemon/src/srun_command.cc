// The srun command: analysis and per-launch rewriting (srun_command.h).
#include "strun/daemon/srun_command.h"

#include "strun/slurm/hostlist.h"

namespace strun::daemon {
namespace {

enum class Opt { kNodes, kNodelist, kExclude, kNtasks, kNtasksPerNode };

struct Spec {
  char short_name;  // 0: none
  const char* long_name;
  Opt opt;
  bool dropped;  // removed by RewriteSrunCommand
};

constexpr Spec kSpecs[] = {
    {'N', "nodes", Opt::kNodes, true},
    {'w', "nodelist", Opt::kNodelist, true},
    {'x', "exclude", Opt::kExclude, true},
    {'n', "ntasks", Opt::kNtasks, false},
    {0, "ntasks-per-node", Opt::kNtasksPerNode, false},
};

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// An srun option of kSpecs at argv[i]: which one, its value, and how many arguments it spans.
struct Match {
  const Spec* spec = nullptr;
  std::string value;
  size_t span = 1;
  bool missing_value = false;
};

Match MatchOption(const std::vector<std::string>& argv, size_t i, size_t end) {
  const std::string& a = argv[i];
  Match m;
  for (const Spec& s : kSpecs) {
    std::string shrt = s.short_name ? std::string("-") + s.short_name : "";
    std::string lng = std::string("--") + s.long_name;
    if ((!shrt.empty() && a == shrt) || a == lng) {
      m.spec = &s;
      if (i + 1 >= end) {
        m.missing_value = true;
      } else {
        m.value = argv[i + 1];
        m.span = 2;
      }
      return m;
    }
    if (a.rfind(lng + "=", 0) == 0) {
      m.spec = &s;
      m.value = a.substr(lng.size() + 1);
      return m;
    }
    if (!shrt.empty() && a.size() > 2 && a.rfind(shrt, 0) == 0) {
      m.spec = &s;
      m.value = a.substr(2);
      return m;
    }
  }
  return m;
}

std::optional<int> PositiveInt(const std::string& s) {
  if (s.empty() || s.size() > 7 || s.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  int v = std::stoi(s);
  if (v < 1) return std::nullopt;
  return v;
}

std::string Quote(const std::string& option, const std::string& value) {
  if (option.rfind("--", 0) == 0) return "'" + option + "=" + value + "'";
  return "'" + option + " " + value + "'";
}

}  // namespace

Result<SrunCommand> ParseSrunCommand(const std::vector<std::string>& argv) {
  if (argv.empty()) return MakeError("no command after `--`: give the srun command to run");
  if (Basename(argv[0]) != "srun")
    return MakeError(
        "the command after `--` must start with srun, not '" + argv[0] +
        "' (strund launches and relaunches the step with srun: -- srun ... strun ...)");
  SrunCommand c;
  c.argv = argv;
  size_t i = 1;
  bool found = false;
  while (i < argv.size()) {
    const std::string& a = argv[i];
    if (!a.empty() && a[0] != '-' && Basename(a) == "strun") {
      c.strun_index = i;
      found = true;
      break;
    }
    Match m = MatchOption(argv, i, argv.size());
    if (!m.spec) {
      ++i;
      continue;
    }
    const std::string option =
        m.span == 2 || m.missing_value
            ? a
            : (a.rfind("--", 0) == 0 ? a.substr(0, a.find('=')) : a.substr(0, 2));
    if (m.missing_value) return MakeError("srun option '" + a + "' needs a value");
    switch (m.spec->opt) {
      case Opt::kNodes: {
        std::string lo = m.value, hi = m.value;
        if (size_t dash = m.value.find('-'); dash != std::string::npos) {
          lo = m.value.substr(0, dash);
          hi = m.value.substr(dash + 1);
        }
        auto l = PositiveInt(lo), h = PositiveInt(hi);
        if (!l || !h || *l > *h)
          return MakeError("srun option " + Quote(option, m.value) + ": expected a node count");
        if (*l != *h)
          return MakeError(
              "srun option " + Quote(option, m.value) +
              ": strund chooses each launch's node count; give one count here, and let strund "
              "continue on fewer nodes with `strund --nodes MIN:MAX` (options.h)");
        c.nodes = *l;
        break;
      }
      case Opt::kNodelist:
      case Opt::kExclude: {
        auto names = slurm::ExpandHostlist(m.value);
        if (!names)
          return MakeError("srun option " + Quote(option, m.value) + ": " + names.error().message);
        (m.spec->opt == Opt::kNodelist ? c.nodelist : c.exclude) = std::move(*names);
        break;
      }
      case Opt::kNtasks:
      case Opt::kNtasksPerNode: {
        auto v = PositiveInt(m.value);
        if (!v)
          return MakeError("srun option " + Quote(option, m.value) +
                           ": expected a positive number of tasks");
        (m.spec->opt == Opt::kNtasks ? c.ntasks : c.ntasks_per_node) = *v;
        break;
      }
    }
    i += m.span;
  }
  if (!found)
    return MakeError(
        "the srun command runs no strun: strund needs `srun [srun options] strun [strun options] "
        "...` "
        "(a program whose name is strun, e.g. /opt/strun/bin/strun), got '" +
        argv[argv.size() > 1 ? 1 : 0] + "'" + (argv.size() > 2 ? " ..." : ""));
  return c;
}

std::vector<std::string> RewriteSrunCommand(const SrunCommand& command,
                                            const std::vector<std::string>& nodes) {
  std::vector<std::string> out;
  const auto& argv = command.argv;
  out.push_back(argv[0]);
  out.push_back("--nodes=" + std::to_string(nodes.size()));
  std::string list;
  for (const auto& n : nodes) list += (list.empty() ? "" : ",") + n;
  out.push_back("--nodelist=" + list);
  // A step that lost a node stays "running" on it until Slurm declares the node DOWN, holding its
  // CPUs on the healthy nodes too; without --overlap the relaunch would wait for that.
  out.push_back("--overlap");
  size_t i = 1;
  while (i < command.strun_index) {
    Match m = MatchOption(argv, i, command.strun_index);
    if (m.spec && m.spec->dropped) {
      i += m.span;
      continue;
    }
    // Options strund only reads, and everything else, stay (with their values).
    for (size_t k = 0; k < m.span; ++k) out.push_back(argv[i + k]);
    i += m.span;
  }
  for (; i < argv.size(); ++i) out.push_back(argv[i]);
  return out;
}

int NumAgents(const SrunCommand& command, int num_nodes, std::optional<int> env_ntasks_per_node) {
  if (command.ntasks) return *command.ntasks;
  int per_node = command.ntasks_per_node.value_or(env_ntasks_per_node.value_or(1));
  return num_nodes * per_node;
}

}  // namespace strun::daemon
