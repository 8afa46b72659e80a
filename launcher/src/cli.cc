// torchrun's argparse command line, reimplemented: option table, PET_* defaults, abbreviations.
#include <signal.h>
#include <string.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <regex>

#include "strun/launcher/options.h"

namespace strun::launcher {
namespace {

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

// One row of the option table: each option is spelled once, here, with what it stores and how.
// `source` ("argument --x" or "PET_X=v (environment)") starts every error message of a setter.
using Setter =
    std::function<Status(LaunchOptions&, const std::string& value, const std::string& source)>;

struct Option {
  std::vector<std::string> names;  // "-r" (if any), "--long-name", "--long_name" (if it differs)
  std::string dest;         // "long_name": argparse's dest, PET_LONG_NAME, the explicit_options key
  bool reads_env;           // PET_<DEST> gives the default (torchrun's env action / check_env)
  bool LaunchOptions::*on;  // a switch: set by its presence; PET_<DEST> is read as an integer
  Setter set;               // an option with a value: parses and stores it

  bool TakesValue() const { return on == nullptr; }
  // The spelling errors show: "--module" after a long spelling, "-m/--module" after a short one.
  const std::string& LongName() const { return names[names[0].size() == 2 ? 1 : 0]; }
  std::string ShortAndLongName() const {
    return names.size() > 1 ? names[0] + "/" + names[1] : names[0];
  }
};

enum Pet : bool { kNoPet = false, kPet = true };

// `spelling` is "--long-name" or "-s/--long-name"; the underscore spelling and the dest follow.
Option MakeOption(const std::string& spelling, Pet pet, bool LaunchOptions::*on, Setter set) {
  Option opt{{}, {}, pet == kPet, on, std::move(set)};
  std::string dash = spelling;
  if (auto slash = spelling.find('/'); slash != std::string::npos) {
    opt.names.push_back(spelling.substr(0, slash));
    dash = spelling.substr(slash + 1);
  }
  std::string underscore = dash;
  std::replace(underscore.begin() + 2, underscore.end(), '-', '_');
  opt.names.push_back(dash);
  if (underscore != dash) opt.names.push_back(underscore);
  opt.dest = underscore.substr(2);
  return opt;
}

Option Value(const std::string& spelling, Pet pet, Setter set) {
  return MakeOption(spelling, pet, nullptr, std::move(set));
}

Option Switch(const std::string& spelling, Pet pet, bool LaunchOptions::*on) {
  return MakeOption(spelling, pet, on, nullptr);
}

// The value as given (std::string or std::optional<std::string> fields).
template <class T>
Setter Text(T LaunchOptions::*field) {
  return [field](LaunchOptions& o, const std::string& value, const std::string&) -> Status {
    o.*field = value;
    return {};
  };
}

// A non-empty value; `what` says what an empty one lacks.
Setter NonEmpty(std::optional<std::string> LaunchOptions::*field, std::string what) {
  return [field, what](LaunchOptions& o, const std::string& value,
                       const std::string& source) -> Status {
    if (value.empty()) return MakeError(source + ": " + what);
    o.*field = value;
    return {};
  };
}

// One of `choices` (std::string or std::optional<std::string> fields), as argparse's choices=.
template <class T>
Setter Choice(T LaunchOptions::*field, std::vector<std::string> choices) {
  return [field, choices](LaunchOptions& o, const std::string& value,
                          const std::string& source) -> Status {
    if (std::find(choices.begin(), choices.end(), value) == choices.end()) {
      std::string list;
      for (const auto& c : choices) list += (list.empty() ? "" : ", ") + Quote(c);
      return MakeError(source + ": invalid choice: " + Quote(value) + " (choose from " + list +
                       ")");
    }
    o.*field = value;
    return {};
  };
}

// Python int() of a 32-bit value (int or std::optional<int> fields), at least `min` if given.
template <class T>
Setter Int(T LaunchOptions::*field, std::optional<int> min = std::nullopt) {
  return [field, min](LaunchOptions& o, const std::string& value,
                      const std::string& source) -> Status {
    auto v = ToInt(value);
    if (!v || *v < INT32_MIN || *v > INT32_MAX)
      return MakeError(source + ": invalid int value: " + Quote(value));
    if (min && *v < *min) return MakeError(source + ": must be at least " + std::to_string(*min));
    o.*field = int(*v);
    return {};
  };
}

// Python float().
Setter Float(double LaunchOptions::*field) {
  return [field](LaunchOptions& o, const std::string& value, const std::string& source) -> Status {
    auto v = ToFloat(value);
    if (!v) return MakeError(source + ": invalid float value: " + Quote(value));
    o.*field = *v;
    return {};
  };
}

// strun's recovery durations and factors: finite, >= 0, and > 0 unless `zero_ok`.
Setter Seconds(double LaunchOptions::*field, bool zero_ok) {
  return [field, zero_ok](LaunchOptions& o, const std::string& value,
                          const std::string& source) -> Status {
    auto v = ToFloat(value);
    if (!v || !(*v >= 0) || std::isinf(*v))
      return MakeError(source + ": invalid value " + Quote(value) +
                       " (seconds, or a factor, >= 0)");
    if (!zero_ok && *v <= 0) return MakeError(source + ": must be greater than 0");
    o.*field = *v;
    return {};
  };
}

// torchrun's comma_separated_list.
Setter List(std::vector<std::string> LaunchOptions::*field) {
  return [field](LaunchOptions& o, const std::string& value, const std::string&) -> Status {
    o.*field = CommaList(value);
    return {};
  };
}

// torchrun's options in torchrun's order (abbreviation errors list candidates in this order), then
// strun's.
const std::vector<Option>& Table() {
  using O = LaunchOptions;
  static const std::vector<Option> table = {
      Value("--nnodes", kPet, Text(&O::nnodes)),
      Value("--nproc-per-node", kPet, Text(&O::nproc_per_node)),
      Value("--rdzv-backend", kPet, Text(&O::rdzv_backend)),
      Value("--rdzv-endpoint", kPet, Text(&O::rdzv_endpoint)),
      Value("--rdzv-id", kPet, Text(&O::rdzv_id)),
      Value("--rdzv-conf", kPet, Text(&O::rdzv_conf)),
      Switch("--standalone", kPet, &O::standalone),
      Value("--max-restarts", kPet, Int(&O::max_restarts)),
      Value("--monitor-interval", kPet, Float(&O::monitor_interval)),
      Value("--start-method", kPet, Choice(&O::start_method, {"spawn", "fork", "forkserver"})),
      Value("--event-log-handler", kPet, Text(&O::event_log_handler)),
      Value("--role", kPet, Text(&O::role)),
      Switch("-m/--module", kPet, &O::module),
      Switch("--no-python", kPet, &O::no_python),
      Switch("--run-path", kPet, &O::run_path),
      Value("--log-dir", kPet, Text(&O::log_dir)),
      Value("-r/--redirects", kPet, Text(&O::redirects)),
      Value("-t/--tee", kPet, Text(&O::tee)),
      Value("--local-ranks-filter", kPet, Text(&O::local_ranks_filter)),
      Value("--duplicate-stdout-filters", kPet, List(&O::duplicate_stdout_filters)),
      Value("--duplicate-stderr-filters", kPet, List(&O::duplicate_stderr_filters)),
      Value("--node-rank", kPet, Int(&O::node_rank)),
      Value("--master-addr", kPet, Text(&O::master_addr)),
      Value("--master-port", kPet, Int(&O::master_port)),
      Value("--local-addr", kPet, Text(&O::local_addr)),
      Value("--logs-specs", kNoPet, Text(&O::logs_specs)),
      Value("--numa-binding", kNoPet,
            Choice(&O::numa_binding, {"node", "socket", "exclusive", "core-complex"})),
      Value("--signals-to-handle", kPet, Text(&O::signals_to_handle)),
      Value("--shutdown-timeout", kPet, Int(&O::shutdown_timeout)),
      Switch("--virtual-local-rank", kPet, &O::virtual_local_rank),
      // strun's own (not torchrun's): STRUN_ENVIRONMENT instead of a PET_ variable.
      Value("--environment", kNoPet, NonEmpty(&O::environment, "expected an EDF name or path")),
      // strun's recovery settings (progress.h, coordination.h); no PET_ variables either.
      Value("--startup-timeout", kNoPet, Seconds(&O::startup_timeout, /*zero_ok=*/false)),
      Value("--hang-timeout", kNoPet, Seconds(&O::hang_timeout, /*zero_ok=*/false)),
      Value("--hang-timeout-floor", kNoPet, Seconds(&O::hang_timeout_floor, /*zero_ok=*/false)),
      Value("--hang-timeout-factor", kNoPet, Seconds(&O::hang_timeout_factor, /*zero_ok=*/false)),
      Value("--restart-backoff", kNoPet, Seconds(&O::restart_backoff, /*zero_ok=*/true)),
      Value("--restart-backoff-max", kNoPet, Seconds(&O::restart_backoff_max, /*zero_ok=*/true)),
      Value("--max-same-step-failures", kNoPet, Int(&O::max_same_step_failures, /*min=*/1)),
      Switch("-h/--help", kNoPet, &O::help),
  };
  return table;
}

// A default from PET_<DEST>; switches follow check_env, bool(int(value)).
Status FromEnv(LaunchOptions& o, const Option& opt, const std::string& value) {
  const std::string source = EnvName(opt.dest) + "=" + value + " (environment)";
  if (opt.TakesValue()) return opt.set(o, value, source);
  auto v = ToInt(value);
  if (!v) return MakeError(source + ": invalid value " + Quote(value) + " (use 0 or 1)");
  o.*opt.on = *v != 0;
  return {};
}

const Option* FindExact(const std::string& name) {
  for (const auto& opt : Table())
    for (const auto& n : opt.names)
      if (n == name) return &opt;
  return nullptr;
}

// argparse's abbreviation rule for long options, except that two spellings of one option are not
// "ambiguous" (Python 3.11's argparse calls --nproc ambiguous; nothing is lost by accepting it).
Result<const Option*> FindLong(const std::string& name) {
  if (const Option* opt = FindExact(name)) return opt;
  std::vector<std::string> matches;
  const Option* found = nullptr;
  bool several = false;
  for (const auto& opt : Table()) {
    bool hit = false;
    for (const auto& n : opt.names) {
      if (n.size() > 2 && n.rfind("--", 0) == 0 && n.rfind(name, 0) == 0) {
        matches.push_back(n);
        hit = true;
      }
    }
    if (hit) {
      if (found && found != &opt) several = true;
      found = &opt;
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

bool IsOptionLike(const std::string& s) {
  return s.size() > 1 && s[0] == '-' && !LooksLikeNegativeNumber(s);
}

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
    if (!lo || !hi)
      return MakeError("--nnodes=" + o.nnodes + ": expected N or MIN:MAX with integers");
    if (!(0 < *lo && *lo <= *hi) || *hi > 1000000)
      return MakeError("--nnodes=" + o.nnodes + ": needs 0 < MIN <= MAX");
    o.min_nodes = int(*lo);
    o.max_nodes = int(*hi);
  }
  if (o.max_restarts < 0)
    return MakeError("--max-restarts=" + std::to_string(o.max_restarts) + ": must be >= 0");
  if (o.monitor_interval <= 0) return MakeError("--monitor-interval must be > 0");
  if (o.node_rank < 0)
    return MakeError("--node-rank=" + std::to_string(o.node_rank) + ": must be >= 0");
  if (o.master_port && (*o.master_port < 0 || *o.master_port > 65535))
    return MakeError("--master-port=" + std::to_string(*o.master_port) +
                     ": not a TCP port (0-65535)");
  if (!o.Explicit("shutdown_timeout")) {
    auto it = env.find("TORCH_ELASTIC_SHUTDOWN_TIMEOUT");
    if (it != env.end()) {
      auto v = ToInt(it->second);
      if (!v || *v < 0)
        return MakeError("TORCH_ELASTIC_SHUTDOWN_TIMEOUT=" + it->second +
                         ": expected a number of seconds");
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
        return MakeError(
            "--local_ranks_filter must be a comma-separated list of integers e.g. "
            "--local_ranks_filter=0,1,2 (got '" +
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
    return MakeError(
        "Don't use both the '--no-python' flag and the '--module' flag at the same time.");
  if (o.logs_specs)
    return MakeError("--logs-specs=" + *o.logs_specs +
                     ": strun has only the default log layout (the option names a Python entry "
                     "point); drop the flag");
  if (!o.environment) {
    if (auto it = env.find("STRUN_ENVIRONMENT"); it != env.end() && !it->second.empty())
      o.environment = it->second;
  }
  if (o.numa_binding)
    o.warnings.push_back("--numa-binding=" + *o.numa_binding +
                         " is not implemented by strun; workers are not bound to NUMA nodes");
  if (!o.duplicate_stdout_filters.empty() || !o.duplicate_stderr_filters.empty())
    o.warnings.push_back(
        "--duplicate-stdout-filters/--duplicate-stderr-filters are not implemented by strun; no "
        "lines are duplicated");
  if (o.training_script.empty() && !o.help)
    return MakeError("the following arguments are required: training_script");
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
    return MakeError(
        flag + "=" + value +
        " does not match <^[0123]$> or <^(\\d:[0123],)*(\\d:[0123])$> (e.g. 3, or 0:1,1:2)");
  }
  return spec;
}

Result<std::vector<int>> ParseSignalList(const std::string& list, const std::string& what) {
  static const std::map<std::string, int> kNames = {
      {"SIGHUP", SIGHUP},       {"SIGINT", SIGINT},   {"SIGQUIT", SIGQUIT},   {"SIGTERM", SIGTERM},
      {"SIGUSR1", SIGUSR1},     {"SIGUSR2", SIGUSR2}, {"SIGALRM", SIGALRM},   {"SIGCONT", SIGCONT},
      {"SIGXCPU", SIGXCPU},     {"SIGPWR", SIGPWR},   {"SIGWINCH", SIGWINCH}, {"SIGURG", SIGURG},
      {"SIGVTALRM", SIGVTALRM}, {"SIGPROF", SIGPROF}, {"SIGXFSZ", SIGXFSZ},   {"SIGTSTP", SIGTSTP},
      {"SIGTTIN", SIGTTIN},     {"SIGTTOU", SIGTTOU}, {"SIGPIPE", SIGPIPE},   {"SIGABRT", SIGABRT},
      {"SIGKILL", SIGKILL},     {"SIGSTOP", SIGSTOP}, {"SIGCHLD", SIGCHLD}};
  std::vector<int> out;
  for (auto item : CommaList(list)) {
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front())))
      item.erase(0, 1);
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
      return MakeError(what + ": unknown signal '" + item +
                       "' (use names such as SIGTERM,SIGUSR1)");
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
  for (const auto& opt : Table()) {
    if (!opt.reads_env) continue;
    auto it = env.find(EnvName(opt.dest));
    if (it == env.end()) continue;
    if (auto s = FromEnv(o, opt, it->second); !s) return s.error();
    // check_env with PET_X=0 leaves the switch off: not "explicit".
    if (opt.TakesValue() || o.*opt.on) o.explicit_options.insert(opt.dest);
  }

  size_t i = 0;
  auto take_value = [&](const Option& opt, const std::string& shown,
                        std::optional<std::string> inline_value) -> Status {
    std::string value;
    if (inline_value) {
      value = *inline_value;
    } else {
      if (i + 1 >= args.size() || IsOptionLike(args[i + 1]))
        return MakeError("argument " + shown + ": expected one argument");
      value = args[++i];
    }
    if (auto s = opt.set(o, value, "argument " + shown); !s) return s;
    o.explicit_options.insert(opt.dest);
    return {};
  };

  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      if (i + 1 >= args.size())
        return MakeError("the following arguments are required: training_script");
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
      auto found = FindLong(name);
      if (!found) return found.error();
      const Option& opt = **found;
      if (!opt.TakesValue()) {
        if (inline_value)
          return MakeError("argument " + opt.LongName() + ": ignored explicit argument " +
                           Quote(*inline_value));
        o.*opt.on = true;
        o.explicit_options.insert(opt.dest);
      } else if (auto st = take_value(opt, opt.LongName(), inline_value); !st) {
        return st.error();
      }
      continue;
    }
    // Short options: -r3, -r=3, -r 3, -m, -h, and clusters of switches like -mh.
    std::string rest = a.substr(1);
    while (!rest.empty()) {
      const Option* opt = FindExact(std::string("-") + rest[0]);
      if (!opt) return MakeError("unrecognized arguments: " + a);
      const std::string shown = opt->ShortAndLongName();
      rest.erase(0, 1);
      if (!opt->TakesValue()) {
        if (!rest.empty() && rest[0] == '=')
          return MakeError("argument " + shown + ": ignored explicit argument " +
                           Quote(rest.substr(1)));
        o.*opt->on = true;
        o.explicit_options.insert(opt->dest);
        continue;
      }
      std::optional<std::string> inline_value;
      if (!rest.empty()) inline_value = rest[0] == '=' ? rest.substr(1) : rest;
      if (auto st = take_value(*opt, shown, inline_value); !st) return st.error();
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
