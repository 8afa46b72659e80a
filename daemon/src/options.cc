// strund's command line (options.h), parsed with CLI11.
#include "strun/daemon/options.h"

#include <CLI/CLI.hpp>

#include "strun/daemon/srun_command.h"
#include "strun/daemon/supervision.h"

namespace strun::daemon {
namespace {

struct NodeCount {
  int min = 0, max = 0;
};

// "N" or "MIN:MAX" (see options.h).
Result<NodeCount> ParseNodeCount(const std::string& text) {
  auto to_int = [&](const std::string& s) -> std::optional<int> {
    if (s.empty() || s.size() > 6 || s.find_first_not_of("0123456789") != std::string::npos)
      return std::nullopt;
    int v = std::stoi(s);
    if (v < 1) return std::nullopt;
    return v;
  };
  size_t colon = text.find(':');
  if (colon == std::string::npos) {
    if (auto v = to_int(text)) return NodeCount{*v, *v};
    return MakeError("--nodes " + text + ": expected a positive number of nodes");
  }
  auto lo = to_int(text.substr(0, colon)), hi = to_int(text.substr(colon + 1));
  if (!lo || !hi || *lo > *hi)
    return MakeError("--nodes " + text + ": expected N or MIN:MAX with 1 <= MIN <= MAX");
  return NodeCount{*lo, *hi};
}

// --nodes MIN:MAX: the layout options are given and fit MAX nodes.
Status CheckElastic(const DaemonOptions& o, const std::string& nodes_text) {
  std::string missing;
  if (o.procs_per_node == 0) missing = " --procs-per-node";
  if (o.micro_batches == 0)
    missing += (missing.empty() ? " " : " and ") + std::string("--micro-batches");
  if (!missing.empty())
    return MakeError("--nodes " + nodes_text +
                     ": continuing on fewer nodes with the same global batch needs the training "
                     "layout; give" +
                     missing +
                     " (--procs-per-node: training processes per node; --micro-batches: "
                     "parallelism.dp * tokens.batch_accumulation_per_replica of the config)");
  auto full = ElasticLayoutFor(
      ElasticBatch{o.min_nodes, o.procs_per_node, o.model_parallel, o.micro_batches}, *o.nodes);
  if (!full)
    return MakeError(
        "--nodes " + nodes_text + ", --procs-per-node " + std::to_string(o.procs_per_node) +
        ", --model-parallel " + std::to_string(o.model_parallel) + ", --micro-batches " +
        std::to_string(o.micro_batches) + ": " + full.error().message +
        "; these must describe the training config at " + std::to_string(*o.nodes) + " nodes");
  return {};
}

}  // namespace

std::string DaemonUsage() {
  return R"(usage: strund [options] -- srun [srun options] strun [strun options] program [args]

Supervises a training job from its batch script: hosts the job's coordination service, runs the
srun step, relaunches it on healthy nodes of the allocation (spares first) when a node or agent is
lost (or continues on fewer nodes, --nodes MIN:MAX), and requeues the job when too few healthy
nodes remain or on pre-emption (SIGUSR1/SIGTERM).

options:
  --nodes N                 nodes per launch (default: srun's -N, else SLURM_JOB_NUM_NODES)
  --nodes MIN:MAX           MAX nodes per launch; with a node lost and no spare left, continue
                            on fewer (down to MIN) with the same global batch: dp shrinks and
                            gradient accumulation grows (needs the options below)
  --procs-per-node P        training processes per node (strun's --nproc-per-node)
  --model-parallel M        processes per model replica, tp * pp of the config (default 1)
  --micro-batches B         micro-batches per step over all replicas: parallelism.dp *
                            tokens.batch_accumulation_per_replica of the config
  --max-restarts K          in-place restarts of the workers per launch (default 3)
  --max-relaunches K        step relaunches after a lost node or agent (default 3)
  --max-requeues K          requeues, compared with SLURM_RESTART_COUNT (default 3)
  --event-log PATH          JSON-lines event log (default ./strund-<jobid>.events.jsonl)
  --tensorboard-dir DIR     also write the events as TensorBoard files in DIR/strund_<jobid>
                            (default $STRUN_TENSORBOARD_DIR; none when unset)
  --node-check-interval S   seconds between node health checks (default 5)
  --backoff-initial S       first back-off between failed restarts without progress (default 1)
  --backoff-max S           longest back-off (default 60)
  --max-same-step-failures K  failures at one step that stop the job (default 2)
  --join-timeout S          seconds the agents of a launch have to join (default 600)
  --stop-timeout S          grace between SIGTERM and SIGKILL when stopping a step (default 10;
                            at most 3 after a lost agent or node)
  --preempt-timeout S       after SIGUSR1, seconds the step has to checkpoint and exit (default 90)
  -h, --help                this text

exit codes: 0 done, 1 failed (a requeue would not help), 2 usage, 75 a requeue makes sense
(strund requested it, or could not: see the event log)
)";
}

Result<DaemonOptions> ParseDaemonCommandLine(const std::vector<std::string>& args) {
  DaemonOptions o;
  std::vector<std::string> own;
  size_t i = 0;
  for (; i < args.size() && args[i] != "--"; ++i) own.push_back(args[i]);
  const bool has_separator = i < args.size();
  for (size_t j = i + 1; j < args.size(); ++j) o.command.push_back(args[j]);
  for (const auto& a : own)
    if (a == "-h" || a == "--help") {
      o.help = true;
      return o;
    }

  CLI::App app{"strund"};
  app.set_help_flag();
  app.allow_extras();
  std::string nodes;
  app.add_option("--nodes,--nnodes", nodes);
  app.add_option("--procs-per-node", o.procs_per_node)->check(CLI::PositiveNumber);
  app.add_option("--model-parallel", o.model_parallel)->check(CLI::PositiveNumber);
  app.add_option("--micro-batches", o.micro_batches)->check(CLI::PositiveNumber);
  app.add_option("--max-restarts", o.max_restarts)->check(CLI::NonNegativeNumber);
  app.add_option("--max-relaunches", o.max_relaunches)->check(CLI::NonNegativeNumber);
  app.add_option("--max-requeues", o.max_requeues)->check(CLI::NonNegativeNumber);
  app.add_option("--event-log", o.event_log);
  app.add_option("--tensorboard-dir", o.tensorboard_dir);
  app.add_option("--node-check-interval", o.node_check_interval_s)->check(CLI::PositiveNumber);
  app.add_option("--backoff-initial", o.backoff_initial_s)->check(CLI::NonNegativeNumber);
  app.add_option("--backoff-max", o.backoff_max_s)->check(CLI::NonNegativeNumber);
  app.add_option("--max-same-step-failures", o.max_same_step_failures)->check(CLI::PositiveNumber);
  app.add_option("--join-timeout", o.join_timeout_s)->check(CLI::PositiveNumber);
  app.add_option("--stop-timeout", o.stop_timeout_s)->check(CLI::NonNegativeNumber);
  app.add_option("--preempt-timeout", o.preempt_timeout_s)->check(CLI::NonNegativeNumber);
  try {
    std::vector<std::string> reversed(own.rbegin(), own.rend());
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return MakeError(e.what());
  }
  if (!app.remaining().empty()) {
    const std::string first = app.remaining().front();
    return MakeError((first.rfind("-", 0) == 0 ? "unknown option '" : "unexpected argument '") +
                     first +
                     "' (strund's own options come before `--`, the srun command after it)");
  }
  if (!nodes.empty()) {
    auto n = ParseNodeCount(nodes);
    if (!n) return n.error();
    o.nodes = n->max;
    if (n->min < n->max) {
      o.min_nodes = n->min;
      if (auto st = CheckElastic(o, nodes); !st) return st.error();
    }
  }
  if (o.min_nodes == 0 && (o.procs_per_node || o.micro_batches || o.model_parallel != 1))
    return MakeError(
        "--procs-per-node, --model-parallel and --micro-batches describe the training layout "
        "for continuing on fewer nodes: give them with --nodes MIN:MAX (MIN < MAX), or drop them");
  if (o.backoff_max_s < o.backoff_initial_s)
    return MakeError("--backoff-max " + std::to_string(o.backoff_max_s) +
                     " is below --backoff-initial " + std::to_string(o.backoff_initial_s) +
                     "; give a larger --backoff-max");
  if (!has_separator)
    return MakeError(
        "no command: give the step after `--`, e.g. strund --nodes 2 -- srun strun "
        "--nproc-per-node=4 "
        "train.py");
  if (o.command.empty())
    return MakeError("nothing after `--`: give the step to run, e.g. -- srun strun train.py");
  auto srun = ParseSrunCommand(o.command);
  if (!srun) return srun.error();
  return o;
}

}  // namespace strun::daemon
