// strun/launcher/agent.h: one strun process, supervising its workers as part of the job's group.
//
// The agent joins the coordination service (coordination.h), starts its workers when told,
// relays their output (output.h), reports the first local failure at once and stops its own
// workers right away (SIGTERM to every worker's process group, SIGKILL after --shutdown-timeout),
// and starts them again when the group restarts. Signals:
//   SIGTERM, SIGINT, SIGHUP, SIGQUIT (when listed in --signals-to-handle): forwarded to every
//     worker's process group; strun then stops the whole job (all nodes) without restarting and
//     exits with 128+signal. A second such signal sends SIGKILL at once.
//   any other listed signal (add SIGUSR1,SIGUSR2 for Slurm's --signal pre-emption warning): sent
//     to every worker's main process, which keeps running. (torchrun tears the group down on every
//     listed signal; a pre-emption warning is meant to let workers checkpoint first.)
// Exit status: 0 when every worker of every node succeeded; else the root-cause worker's exit
// code, 128+N when it died of signal N (torchrun exits 1); 128+N when strun was stopped by signal
// N; 2 for command-line errors (as argparse); 1 for other launcher errors and lost agents.
//
// Containers: with --environment=EDF (or STRUN_ENVIRONMENT) strun, built with edf/, creates the
// EDF's container once per agent before the first attempt (edf/launch.h: PrepareEnvironment; it
// needs root), enters it in every worker child just before exec (WorkerWrapper), gives workers the
// container's task environment, and destroys it when the launch ends. Already inside a container
// of the SPANK plugin (srun --environment), workers start as usual.
//
// Logs: <log dir>/<run id>_<random>/attempt_<restart>/<local
// rank>/{stdout.log,stderr.log,error.json} as torchrun; the log dir defaults to a new
// $TMPDIR/strun_XXXXXX (torchrun: torchelastic_XXXXXX).
#pragma once

#include <functional>
#include <map>
#include <string>

#include "strun/launcher/options.h"
#include "strun/launcher/plan.h"
#include "strun/result.h"

namespace strun::launcher {

// How workers are wrapped, e.g. in an EDF container (strun --environment): `environment` turns the
// worker's environment into the task's (in strun, before fork), `enter` runs in the forked worker
// just before exec (single-threaded there).
struct WorkerWrapper {
  std::function<std::map<std::string, std::string>(const std::map<std::string, std::string>&)>
      environment;
  std::function<Status()> enter;
};

// Runs the whole launch and returns strun's exit status.
int RunAgent(const LaunchOptions& options, const LaunchPlan& plan,
             const std::map<std::string, std::string>& env, const WorkerWrapper* wrapper = nullptr);

}  // namespace strun::launcher
