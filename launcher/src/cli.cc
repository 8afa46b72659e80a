// torchrun's argparse command line, reimplemented: option table, PET_* defaults, abbreviations.
#include <signal.h>
#include <string.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <regex>

#include "strun/launcher/options.h"

namespace strun::launcher {
namespace {

enum class Kind { kString, kInt, kFloat, kFlag, kList };

struct Spec {
  std::vector<std::string> names;  // e.g. {"--nproc-per-node", "--nproc_per_node"}
  std::string dest;                // argparse dest; PET_<DEST upper>
  Kind kind;
  bool reads_env;                  // action=env / check_env (false for --logs-specs, --numa-binding)
};

const std::vector<Spec>& Specs() {
  static const std::vector<Spec> specs = {
      {{"--nnodes"}, "nnodes", Kind::kString, true},
      {{"--nproc-per-node", "--nproc_per_node"}, "nproc_per_node", Kind::kString, true},
      {{"--rdzv-backend", "--rdzv_backend"}, "rdzv_backend", Kind::kString, true},
      {{"--rdzv-endpoint", "--rdzv_endpoint"}, "rdzv_endpoint", Kind::kString, true},
      {{"--rdzv-id", "--rdzv_id"}, "rdzv_id", Kind::kString, true},
      {{"--rdzv-conf", "--rdzv_conf"}, "rdzv_conf", Kind::kString, true},
      {{"--standalone"}, "standalone", Kind::kFlag, true},
      {{"--max-restarts", "--max_restarts"}, "max_restarts", Kind::kInt, true},
      {{"--monitor-interval", "--monitor_interval"}, "monitor_interval", Kind::kFloat, true},
      {{"--start-method", "--start_method"}, "start_method", Kind::kString, true},
      {{"--event-log-handler", "--event_log_handler"}, "event_log_handler", Kind::kString, true},
      {{"--role"}, "role", Kind::kString, true},
      {{"-m", "--module"}, "module", Kind::kFlag, true},
      {{"--no-python", "--no_python"}, "no_python", Kind::kFlag, true},
      {{"--run-path", "--run_path"}, "run_path", Kind::kFlag, true},
      {{"--log-dir", "--log_dir"}, "log_dir", Kind::kString, true},
      {{"-r", "--redirects"}, "redirects", Kind::kString, true},
      {{"-t", "--tee"}, "tee", Kind::kString, true},
      {{"--local-ranks-filter", "--local_ranks_filter"}, "local_ranks_filter", Kind::kString, true},
      {{"--duplicate-stdout-filters", "--duplicate_stdout_filters"}, "duplicate_stdout_filters", Kind::kList, true},
      {{"--duplicate-stderr-filters", "--duplicate_stderr_filters"}, "duplicate_stderr_filters", Kind::kList, true},
      {{"--node-rank", "--node_rank"}, "node_rank", Kind::kInt, true},
      {{"--master-addr", "--master_addr"}, "master_addr", Kind::kString, true},
      {{"--master-port", "--master_port"}, "master_port", Kind::kInt, true},
      {{"--local-addr", "--local_addr"}, "local_addr", Kind::kString, true},
      {{"--logs-specs", "--logs_specs"}, "logs_specs", Kind::kString, false},
      {{"--numa-binding", "--numa_binding"}, "numa_binding", Kind::kString, false},
      {{"--signals-to-handle", "--signals_to_handle"}, "signals_to_handle", Kind::kString, true},
      {{"--shutdown-timeout", "--shutdown_timeout"}, "shutdown_timeout", Kind::kInt, true},
      {{"--virtual-local-rank", "--virtual_local_rank"}, "virtual_local_rank", Kind::kFlag, true},
      // strun's own (not torchrun's): STRUN_ENVIRONMENT instead of a PET_ variable.
      {{"--environment"}, "environment", Kind::kString, false},
      // strun's recovery settings (progress.h, coordination.h); no PET_ variables either.
      {{"--startup-timeout", "--startup_timeout"}, "startup_timeout", Kind::kFloat, false},
      {{"--hang-timeout", "--hang_timeout"}, "hang_timeout", Kind::kFloat, false},
      {{"--hang-timeout-floor", "--hang_timeout_floor"}, "hang_timeout_floor", Kind::kFloat, false},
      {{"--hang-timeout-factor", "--hang_timeout_factor"}, "hang_timeout_factor", Kind::kFloat, false},
      {{"--restart-backoff", "--restart_backoff"}, "restart_backoff", Kind::kFloat, false},
      {{"--restart-backoff-max", "--restart_backoff_max"}, "restart_backoff_max", Kind::kFloat, false},
      {{"--max-same-step-failures", "--max_same_step_failures"}, "max_same_step_failures", Kind::kInt, false},
      {{"-h", "--help"}, "help", Kind::kFlag, false},
  };
  return specs;
}

std::string EnvName(const std::string& dest) {
  std::string s = "PET_";
  for (char c : dest) s.push_back(char(std::toupper(static_cast<unsigned char>(c))));
  return s;
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

std::optional<long long> ToInt(const std::string& s) {
  // Python int(): optional sign, digits, surrounding whitespace, '_' between digits.
  std::string t;
  size_t b = s.find_first_not_of(" \t\n"), e = s.find_last_not_of(" \t\n");
  if (b == std::string::npos) return std::nullopt;
  t = s.substr(b, e - b + 1);
  std::string digits;
  size_t i = 0;
  bool neg = false;
  if (t[0] == '+' || t[0] == '-') {
    neg = t[0] == '-';
    i = 1;
  }
  if (i >= t.size()) return std::nullopt;
  for (; i < t.size(); ++i) {
    if (std::isdigit(static_cast<unsigned char>(t[i]))) {
      digits.push_back(t[i]);
    } else if (t[i] == '_' && !digits.empty() && i + 1 < t.size() &&
               std::isdigit(static_cast<unsigned char>(t[i + 1]))) {
      continue;
    } else {
      return std::nullopt;
    }
  }
  if (digits.size() > 18) return std::nullopt;
  long long v = std::stoll(digits);
  return neg ? -v : v;
}

std::optional<double> ToFloat(const std::string& s) {
  if (s.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  while (end && *end && std::isspace(static_cast<unsigned char>(*end))) ++end;
  if (errno != 0 || end == s.c_str() || *end != '\0') return std::nullopt;
  return v;
}

// torchrun's comma_separated_list: ",," escapes a comma.
std::vector<std::string> CommaList(const std::string& value) {
  std::vector<std::string> items;
  std::string cur;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == ',') {
      if (i + 1 < value.size() && value[i + 1] == ',') {
        cur.push_back(',');
        ++i;
      } else {
        items.push_back(cur);
        cur.clear();
      }
    } else {
      cur.push_back(value[i]);
    }
  }
  items.push_back(cur);
  return items;
}

// Stores `value` into the field named by `dest`. `source` is "argument --x" or "PET_X=..." for
// error messages.
Status Assign(LaunchOptions& o, const Spec& spec, const std::string& value, const std::string& source) {
  const std::string& d = spec.dest;
  auto int_value = [&](int& out) -> Status {
    auto v = ToInt(value);
    if (!v || *v < INT32_MIN || *v > INT32_MAX) return MakeError(source + ": invalid int value: " + Quote(value));
    out = int(*v);
    return {};
  };
  if (spec.kind == Kind::kFlag) {
    // Only reachable from PET_*: check_env does bool(int(value)).
    auto v = ToInt(value);
    if (!v) return MakeError(source + ": invalid value " + Quote(value) + " (use 0 or 1)");
    bool b = *v != 0;
    if (d == "standalone") o.standalone = b;
    else if (d == "module") o.module = b;
    else if (d == "no_python") o.no_python = b;
    else if (d == "run_path") o.run_path = b;
    else if (d == "virtual_local_rank") o.virtual_local_rank = b;
    return {};
  }
  if (d == "nnodes") o.nnodes = value;
  else if (d == "nproc_per_node") o.nproc_per_node = value;
  else if (d == "rdzv_backend") o.rdzv_backend = value;
  else if (d == "rdzv_endpoint") o.rdzv_endpoint = value;
  else if (d == "rdzv_id") o.rdzv_id = value;
  else if (d == "rdzv_conf") o.rdzv_conf = value;
  else if (d == "max_restarts") return int_value(o.max_restarts);
  else if (d == "monitor_interval") {
    auto v = ToFloat(value);
    if (!v) return MakeError(source + ": invalid float value: " + Quote(value));
    o.monitor_interval = *v;
  } else if (d == "start_method") {
    if (value != "spawn" && value != "fork" && value != "forkserver")
      return MakeError(source + ": invalid choice: " + Quote(value) + " (choose from 'spawn', 'fork', 'forkserver')");
    o.start_method = value;
  } else if (d == "event_log_handler") o.event_log_handler = value;
  else if (d == "role") o.role = value;
  else if (d == "log_dir") o.log_dir = value;
  else if (d == "redirects") o.redirects = value;
  else if (d == "tee") o.tee = value;
  else if (d == "local_ranks_filter") o.local_ranks_filter = value;
  else if (d == "duplicate_stdout_filters") o.duplicate_stdout_filters = CommaList(value);
  else if (d == "duplicate_stderr_filters") o.duplicate_stderr_filters = CommaList(value);
  else if (d == "node_rank") return int_value(o.node_rank);
  else if (d == "master_addr") o.master_addr = value;
  else if (d == "master_port") {
    int p = 0;
    if (auto s = int_value(p); !s) return s;
    o.master_port = p;
  } else if (d == "local_addr") o.local_addr = value;
  else if (d == "logs_specs") o.logs_specs = value;
  else if (d == "environment") {
    if (value.empty()) return MakeError(source + ": expected an EDF name or path");
    o.environment = value;
  }
  else if (d == "numa_binding") {
    if (value != "node" && value != "socket" && value != "exclusive" && value != "core-complex")
      return MakeError(source + ": invalid choice: " + Quote(value) +
                       " (choose from 'node', 'socket', 'exclusive', 'core-complex')");
    o.numa_binding = value;
  } else if (d == "signals_to_handle") o.signals_to_handle = value;
  else if (d == "shutdown_timeout") return int_value(o.shutdown_timeout);
  else if (d == "max_same_step_failures") {
    if (auto s = int_value(o.max_same_step_failures); !s) return s;
    if (o.max_same_step_failures < 1) return MakeError(source + ": must be at least 1");
  } else {
    double* target = d == "startup_timeout"       ? &o.startup_timeout
                     : d == "hang_timeout"        ? &o.hang_timeout
                     : d == "hang_timeout_floor"  ? &o.hang_timeout_floor
                     : d == "hang_timeout_factor" ? &o.hang_timeout_factor
                     : d == "restart_backoff"     ? &o.restart_backoff
                     : d == "restart_backoff_max" ? &o.restart_backoff_max
                                                  : nullptr;
    if (target) {
      auto v = ToFloat(value);
      if (!v || !(*v >= 0) || std::isinf(*v))
        return MakeError(source + ": invalid value " + Quote(value) + " (seconds, or a factor, >= 0)");
      if (d != "restart_backoff" && d != "restart_backoff_max" && *v <= 0)
        return MakeError(source + ": must be greater than 0");
      *target = *v;
    }
  }
  return {};
}

void SetFlag(LaunchOptions& o, const std::string& d) {
  if (d == "standalone") o.standalone = true;
  else if (d == "module") o.module = true;
  else if (d == "no_python") o.no_python = true;
  else if (d == "run_path") o.run_path = true;
  else if (d == "virtual_local_rank") o.virtual_local_rank = true;
  else if (d == "help") o.help = true;
}

const Spec* FindExact(const std::string& name) {
  for (const auto& s : Specs())
    for (const auto& n : s.names)
      if (n == name) return &s;
  return nullptr;
}

// argparse's abbreviation rule for long options, except that two spellings of one option are not
// "ambiguous" (Python 3.11's argparse calls --nproc ambiguous; nothing is lost by accepting it).
Result<const Spec*> FindLong(const std::string& name) {
  if (const Spec* s = FindExact(name)) return s;
  std::vector<std::string> matches;
  const Spec* found = nullptr;
  bool several = false;
  for (const auto& s : Specs()) {
    bool hit = false;
    for (const auto& n : s.names) {
      if (n.size() > 2 && n.rfind("--", 0) == 0 && n.rfind(name, 0) == 0) {
        matches.push_back(n);
        hit = true;
      }
    }
    if (hit) {
      if (found && found != &s) several = true;
      found = &s;
    }
  }
  if (several) {
    std::string list;
    for (const auto& m : matches) list += (list.empty() ? "" : ", ") + m;
    return MakeError("ambiguous option: " + name + " could match " + list);
  }
  if (!found) return MakeError("unrecognized arguments: " + name);
  return found;
}

bool LooksLikeNegativeNumber(const std::string& s) {
  return s.size() > 1 && s[0] == '-' && ToFloat(s).has_value();
}

bool IsOptionLike(const std::string& s) { return s.size() > 1 && s[0] == '-' && !LooksLikeNegativeNumber(s); }

Status Finish(LaunchOptions& o, const std::map<std::string, std::string>& env) {
  // --nnodes MIN:MAX
  {
    auto colon = o.nnodes.find(':');
    std::optional<long long> lo, hi;
    if (colon == std::string::npos) {
      lo = hi = ToInt(o.nnodes);
    } else if (o.nnodes.find(':', colon + 1) == std::string::npos) {
      lo = ToInt(o.nnodes.substr(0, colon));
      hi = ToInt(o.nnodes.substr(colon + 1));
    } else {
      return MakeError("--nnodes=" + o.nnodes + " is not in \"MIN:MAX\" format");
    }
    if (!lo || !hi) return MakeError("--nnodes=" + o.nnodes + ": expected N or MIN:MAX with integers");
    if (!(0 < *lo && *lo <= *hi) || *hi > 1000000)
      return MakeError("--nnodes=" + o.nnodes + ": needs 0 < MIN <= MAX");
    o.min_nodes = int(*lo);
    o.max_nodes = int(*hi);
  }
  if (o.max_restarts < 0) return MakeError("--max-restarts=" + std::to_string(o.max_restarts) + ": must be >= 0");
  if (o.monitor_interval <= 0) return MakeError("--monitor-interval must be > 0");
  if (o.node_rank < 0) return MakeError("--node-rank=" + std::to_string(o.node_rank) + ": must be >= 0");
  if (o.master_port && (*o.master_port < 0 || *o.master_port > 65535))
    return MakeError("--master-port=" + std::to_string(*o.master_port) + ": not a TCP port (0-65535)");
  if (!o.Explicit("shutdown_timeout")) {
    auto it = env.find("TORCH_ELASTIC_SHUTDOWN_TIMEOUT");
    if (it != env.end()) {
      auto v = ToInt(it->second);
      if (!v || *v < 0)
        return MakeError("TORCH_ELASTIC_SHUTDOWN_TIMEOUT=" + it->second + ": expected a number of seconds");
      o.shutdown_timeout = int(*v);
    }
  }
  if (o.shutdown_timeout < 0) return MakeError("--shutdown-timeout must be >= 0");
  if (auto r = ParseStdSpec(o.redirects, "--redirects"); !r) return r.error();
  if (auto r = ParseStdSpec(o.tee, "--tee"); !r) return r.error();
  if (!o.local_ranks_filter.empty()) {
    for (const auto& item : CommaList(o.local_ranks_filter)) {
      auto v = ToInt(item);
      if (!v || *v < 0)
        return MakeError("--local_ranks_filter must be a comma-separated list of integers e.g. --local_ranks_filter=0,1,2 (got '" +
                         o.local_ranks_filter + "')");
      o.local_ranks.insert(int(*v));
    }
  }
  auto sigs = ParseSignalList(o.signals_to_handle, "--signals-to-handle");
  if (!sigs) return sigs.error();
  o.signals = *sigs;
  // --rdzv-conf key=value,key=value
  if (!o.rdzv_conf.empty()) {
    for (const auto& item : CommaList(o.rdzv_conf)) {
      if (item.empty()) continue;
      auto eq = item.find('=');
      if (eq == std::string::npos || eq == 0)
        return MakeError("--rdzv-conf: '" + item + "' is not of the form <key>=<value>");
      o.rdzv_configs[item.substr(0, eq)] = item.substr(eq + 1);
    }
  }
  if (o.no_python && o.module && !o.run_path)
    return MakeError("Don't use both the '--no-python' flag and the '--module' flag at the same time.");
  if (o.logs_specs)
    return MakeError("--logs-specs=" + *o.logs_specs +
                     ": strun has only the default log layout (the option names a Python entry point); drop the flag");
  if (!o.environment) {
    if (auto it = env.find("STRUN_ENVIRONMENT"); it != env.end() && !it->second.empty()) o.environment = it->second;
  }
  if (o.numa_binding)
    o.warnings.push_back("--numa-binding=" + *o.numa_binding + " is not implemented by strun; workers are not bound to NUMA nodes");
  if (!o.duplicate_stdout_filters.empty() || !o.duplicate_stderr_filters.empty())
    o.warnings.push_back("--duplicate-stdout-filters/--duplicate-stderr-filters are not implemented by strun; no lines are duplicated");
  if (o.training_script.empty() && !o.help) return MakeError("the following arguments are required: training_script");
  return {};
}

}  // namespace

int StdSpec::For(int local_rank) const {
  if (all) return *all;
  auto it = per_rank.find(local_rank);
  return it == per_rank.end() ? 0 : it->second;
}

Result<StdSpec> ParseStdSpec(const std::string& value, const std::string& flag) {
  static const std::regex kValue("^[0123]$");
  static const std::regex kMapping("^(\\d:[0123],)*(\\d:[0123])$");
  StdSpec spec;
  if (std::regex_match(value, kValue)) {
    spec.all = value[0] - '0';
  } else if (std::regex_match(value, kMapping)) {
    for (size_t i = 0; i < value.size(); i += 4) spec.per_rank[value[i] - '0'] = value[i + 2] - '0';
  } else {
    return MakeError(flag + "=" + value +
                     " does not match <^[0123]$> or <^(\\d:[0123],)*(\\d:[0123])$> (e.g. 3, or 0:1,1:2)");
  }
  return spec;
}

Result<std::vector<int>> ParseSignalList(const std::string& list, const std::string& what) {
  static const std::map<std::string, int> kNames = {
      {"SIGHUP", SIGHUP},   {"SIGINT", SIGINT},   {"SIGQUIT", SIGQUIT}, {"SIGTERM", SIGTERM},
      {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}, {"SIGALRM", SIGALRM}, {"SIGCONT", SIGCONT},
      {"SIGXCPU", SIGXCPU}, {"SIGPWR", SIGPWR},   {"SIGWINCH", SIGWINCH}, {"SIGURG", SIGURG},
      {"SIGVTALRM", SIGVTALRM}, {"SIGPROF", SIGPROF}, {"SIGXFSZ", SIGXFSZ}, {"SIGTSTP", SIGTSTP},
      {"SIGTTIN", SIGTTIN}, {"SIGTTOU", SIGTTOU}, {"SIGPIPE", SIGPIPE}, {"SIGABRT", SIGABRT},
      {"SIGKILL", SIGKILL}, {"SIGSTOP", SIGSTOP}, {"SIGCHLD", SIGCHLD}};
  std::vector<int> out;
  for (auto item : CommaList(list)) {
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) item.erase(0, 1);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.pop_back();
    if (item.empty()) continue;
    std::string up;
    for (char c : item) up.push_back(char(std::toupper(static_cast<unsigned char>(c))));
    if (up.rfind("SIG", 0) != 0) up = "SIG" + up;
    int sig = 0;
    if (auto it = kNames.find(up); it != kNames.end()) {
      sig = it->second;
    } else if (auto v = ToInt(item); v && *v > 0 && *v < NSIG) {
      sig = int(*v);
    } else {
      return MakeError(what + ": unknown signal '" + item + "' (use names such as SIGTERM,SIGUSR1)");
    }
    if (sig == SIGKILL || sig == SIGSTOP || sig == SIGCHLD)
      return MakeError(what + ": " + item + " cannot be handled or forwarded");
    out.push_back(sig);
  }
  return out;
}

Result<LaunchOptions> ParseCommandLine(const std::vector<std::string>& args,
                                       const std::map<std::string, std::string>& env) {
  LaunchOptions o;
  // Defaults from PET_* first, as argparse's env action does at parser construction.
  for (const auto& spec : Specs()) {
    if (!spec.reads_env) continue;
    auto it = env.find(EnvName(spec.dest));
    if (it == env.end()) continue;
    if (auto s = Assign(o, spec, it->second, EnvName(spec.dest) + "=" + it->second + " (environment)"); !s)
      return s.error();
    // check_env with PET_X=0 leaves the switch off: not "explicit".
    if (spec.kind != Kind::kFlag || ToInt(it->second).value_or(0) != 0) o.explicit_options.insert(spec.dest);
  }

  size_t i = 0;
  auto take_value = [&](const Spec& spec, const std::string& shown, std::optional<std::string> inline_value)
      -> Status {
    std::string value;
    if (inline_value) {
      value = *inline_value;
    } else {
      if (i + 1 >= args.size() || IsOptionLike(args[i + 1]))
        return MakeError("argument " + shown + ": expected one argument");
      value = args[++i];
    }
    if (auto s = Assign(o, spec, value, "argument " + shown); !s) return s;
    o.explicit_options.insert(spec.dest);
    return {};
  };

  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      if (i + 1 >= args.size()) return MakeError("the following arguments are required: training_script");
      o.training_script = args[i + 1];
      o.training_script_args.assign(args.begin() + long(i) + 2, args.end());
      break;
    }
    if (!IsOptionLike(a)) {
      o.training_script = a;
      o.training_script_args.assign(args.begin() + long(i) + 1, args.end());
      break;
    }
    if (a.rfind("--", 0) == 0) {
      std::string name = a;
      std::optional<std::string> inline_value;
      if (auto eq = a.find('='); eq != std::string::npos) {
        name = a.substr(0, eq);
        inline_value = a.substr(eq + 1);
      }
      auto spec = FindLong(name);
      if (!spec) return spec.error();
      const Spec& s = **spec;
      std::string shown = s.names.size() > 1 && s.names[0].size() == 2 ? s.names[1] : s.names[0];
      if (s.kind == Kind::kFlag) {
        if (inline_value) return MakeError("argument " + shown + ": ignored explicit argument " + Quote(*inline_value));
        SetFlag(o, s.dest);
        o.explicit_options.insert(s.dest);
      } else if (auto st = take_value(s, shown, inline_value); !st) {
        return st.error();
      }
      continue;
    }
    // Short options: -r3, -r=3, -r 3, -m, -h, and clusters of switches like -mh.
    std::string rest = a.substr(1);
    while (!rest.empty()) {
      const Spec* s = FindExact(std::string("-") + rest[0]);
      if (!s) return MakeError("unrecognized arguments: " + a);
      std::string shown = s->names.size() > 1 ? s->names[0] + "/" + s->names[1] : s->names[0];
      rest.erase(0, 1);
      if (s->kind == Kind::kFlag) {
        if (!rest.empty() && rest[0] == '=')
          return MakeError("argument " + shown + ": ignored explicit argument " + Quote(rest.substr(1)));
        SetFlag(o, s->dest);
        o.explicit_options.insert(s->dest);
        continue;
      }
      std::optional<std::string> inline_value;
      if (!rest.empty()) inline_value = rest[0] == '=' ? rest.substr(1) : rest;
      if (auto st = take_value(*s, shown, inline_value); !st) return st.error();
      rest.clear();
    }
  }
  if (o.help) return o;
  if (auto s = Finish(o, env); !s) return s.error();
  return o;
}

std::string UsageText() {
  return R"(usage: strun [-h] [--nnodes NNODES] [--nproc-per-node NPROC_PER_NODE]
             [--rdzv-backend RDZV_BACKEND] [--rdzv-endpoint RDZV_ENDPOINT] [--rdzv-id RDZV_ID]
             [--rdzv-conf RDZV_CONF] [--standalone] [--max-restarts MAX_RESTARTS]
             [--monitor-interval MONITOR_INTERVAL] [--start-method {spawn,fork,forkserver}]
             [--event-log-handler EVENT_LOG_HANDLER] [--role ROLE] [-m] [--no-python]
             [--run-path] [--log-dir LOG_DIR] [-r REDIRECTS] [-t TEE]
             [--local-ranks-filter LOCAL_RANKS_FILTER]
             [--duplicate-stdout-filters FILTERS] [--duplicate-stderr-filters FILTERS]
             [--node-rank NODE_RANK] [--master-addr MASTER_ADDR] [--master-port MASTER_PORT]
             [--local-addr LOCAL_ADDR] [--logs-specs LOGS_SPECS] [--numa-binding MODE]
             [--signals-to-handle SIGNALS_TO_HANDLE] [--shutdown-timeout SHUTDOWN_TIMEOUT]
             [--virtual-local-rank] [--environment EDF]
             [--startup-timeout S] [--hang-timeout S] [--hang-timeout-floor S]
             [--hang-timeout-factor F] [--restart-backoff S] [--restart-backoff-max S]
             [--max-same-step-failures N]
             training_script ...

strun: a native, Slurm-aware drop-in for torchrun (torch.distributed.run). Every flag is also
accepted with underscores (--nproc_per_node) and as PET_<NAME> in the environment.

Under Slurm (srun) the topology comes from the job step: one strun per node starts
--nproc-per-node workers; with several tasks per node each strun runs one worker whose RANK is
the task's rank. Without Slurm use --standalone or --nnodes/--node-rank/--master-addr.

--environment EDF (or STRUN_ENVIRONMENT): run the workers in the container an Environment
Definition File describes (a path starting with / or ., else a name looked up in EDF_PATH or
~/.edf), as `srun --environment` does where strun's SPANK plugin is not installed. Needs root.

Recovery (strun's own; launcher/README.md): workers that report progress on STRUN_PROGRESS_FD are
declared hung without a report within --startup-timeout (900 s; start-up and checkpoints) or,
while training, --hang-timeout (default: max(--hang-timeout-floor 60 s, --hang-timeout-factor 5 x
the slowest recent step)). With --max-restarts N the group restarts after a failure or hang, at
once after progress, then waiting --restart-backoff (1 s) doubling up to --restart-backoff-max
(60 s); --max-same-step-failures (2) failures at one step without progress stop the job.

--nproc-per-node: a number from 1 to 1024, or gpu, cpu or auto (GPUs if any, else CPUs).

Worker command: python3 -u [-m] training_script args... where python3 is $STRUN_PYTHON, else
$PYTHON_EXEC, else python3 from PATH; --no-python runs training_script itself.

Exit status: 0 when every worker succeeded; otherwise the exit code of the first failing worker
(128+N when it was killed by signal N); 128+N when strun itself was stopped by signal N; 2 for
command-line errors; 1 for other launcher errors.
)";
}

}  // namespace strun::launcher
