// strun/launcher/options.h: strun's command line, which is torchrun's (PyTorch 2.x).
//
// Every torchrun flag is accepted in its dash and its underscore spelling (--nproc-per-node and
// --nproc_per_node), as `--flag value`, `--flag=value`, `-r3`, `-r=3`, and abbreviated to any
// unique prefix (argparse's allow_abbrev). Each value flag also reads `PET_<DEST>` from the
// environment when it is not on the command line (PET_NPROC_PER_NODE, PET_NNODES, ...); switch
// flags read PET_<DEST> as an integer (PET_STANDALONE=1). Defaults are torchrun's:
//
//   --nnodes 1:1            --nproc-per-node 1        --rdzv-backend static   --rdzv-endpoint ""
//   --rdzv-id none          --rdzv-conf ""            --max-restarts 0        --monitor-interval
//   0.1
//   --start-method spawn    --event-log-handler null  --role default          --log-dir (temp dir)
//   -r/--redirects 0        -t/--tee 0                --local-ranks-filter "" --node-rank 0
//   --master-addr 127.0.0.1 --master-port (none: agent 0 picks a free port for every attempt;
//                                         torchrun uses 29500 for several nodes)
//   --signals-to-handle SIGTERM,SIGINT,SIGHUP,SIGQUIT
//   --shutdown-timeout (TORCH_ELASTIC_SHUTDOWN_TIMEOUT, else 30)
//
// Parsing stops at the first argument that is not an option (the training script) or after `--`;
// everything after the script goes to the script untouched.
//
// Flags that mean nothing to a native launcher are accepted and documented here, never misread:
//   --start-method, --monitor-interval, --event-log-handler: validated, then unused (workers are
//     always fresh processes, as with `spawn`; strun waits on events instead of polling).
//   --numa-binding, --duplicate-stdout-filters, --duplicate-stderr-filters: validated, and strun
//     prints a warning that it does not implement them.
//   --logs-specs: only the default is available (it names a Python entry point); any value is an
//     error.
//   --rdzv-backend/--rdzv-endpoint/--rdzv-id/--rdzv-conf: see plan.h.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::launcher {

struct LaunchOptions {
  std::string nnodes = "1:1";
  int min_nodes = 1;
  int max_nodes = 1;
  std::string nproc_per_node = "1";
  std::string rdzv_backend = "static";
  std::string rdzv_endpoint;
  std::string rdzv_id = "none";
  std::string rdzv_conf;
  std::map<std::string, std::string> rdzv_configs;  // rdzv_conf parsed
  bool standalone = false;
  int max_restarts = 0;
  double monitor_interval = 0.1;
  std::string start_method = "spawn";
  std::string event_log_handler = "null";
  std::string role = "default";
  bool module = false;
  bool no_python = false;
  bool run_path = false;
  std::optional<std::string> log_dir;
  std::string redirects = "0";
  std::string tee = "0";
  std::string local_ranks_filter;
  std::set<int> local_ranks;  // local_ranks_filter parsed; empty = every rank
  std::vector<std::string> duplicate_stdout_filters;
  std::vector<std::string> duplicate_stderr_filters;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  std::optional<int> master_port;
  std::optional<std::string> local_addr;
  std::optional<std::string> logs_specs;
  std::optional<std::string> numa_binding;
  std::string signals_to_handle = "SIGTERM,SIGINT,SIGHUP,SIGQUIT";
  std::vector<int> signals;  // signals_to_handle parsed
  int shutdown_timeout = 30;
  bool virtual_local_rank = false;
  // --environment / STRUN_ENVIRONMENT: the EDF whose container the workers run in (strun's own
  // flag; see agent.h). Not a torchrun flag, so no PET_ variable.
  std::optional<std::string> environment;
  // Recovery (strun's own flags; progress.h and coordination.h say what they do).
  double startup_timeout = 900;
  double hang_timeout = 0;  // 0: derived from the step times
  double hang_timeout_floor = 60;
  double hang_timeout_factor = 5;
  double restart_backoff = 1;
  double restart_backoff_max = 60;
  int max_same_step_failures = 2;
  std::string training_script;
  std::vector<std::string> training_script_args;

  // Destinations ("nnodes", "master_port", ...) given on the command line or through PET_*.
  std::set<std::string> explicit_options;
  bool Explicit(const std::string& dest) const { return explicit_options.count(dest) != 0; }

  bool help = false;
  std::vector<std::string> warnings;  // printed by main before anything starts
};

// Parses argv (without argv[0]) with `env` supplying PET_* and TORCH_ELASTIC_SHUTDOWN_TIMEOUT.
// Errors read like argparse's ("argument --max-restarts: invalid int value: 'x'") and name the
// PET_ variable when the bad value came from the environment.
Result<LaunchOptions> ParseCommandLine(const std::vector<std::string>& args,
                                       const std::map<std::string, std::string>& env);

// The --help text.
std::string UsageText();

// "SIGTERM,SIGUSR1" or "TERM,10" -> signal numbers. `what` names the source for errors.
Result<std::vector<int>> ParseSignalList(const std::string& list, const std::string& what);

// Stream selection of -r/--redirects and -t/--tee: "3" for all local ranks or "0:1,1:2" per rank.
// Bit 1 = stdout, bit 2 = stderr.
struct StdSpec {
  std::optional<int> all;
  std::map<int, int> per_rank;
  int For(int local_rank) const;
};
Result<StdSpec> ParseStdSpec(const std::string& value, const std::string& flag);

}  // namespace strun::launcher
