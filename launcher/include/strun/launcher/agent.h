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
// Logs: <log dir>/<run id>_<random>/attempt_<restart>/<local rank>/{stdout.log,stderr.log,error.json}
// as torchrun; the log dir defaults to a new $TMPDIR/strun_XXXXXX (torchrun: torchelastic_XXXXXX).
#pragma once

#include <map>
#include <string>

#include "strun/launcher/options.h"
#include "strun/launcher/plan.h"

namespace strun::launcher {

// Runs the whole launch and returns strun's exit status.
int RunAgent(const LaunchOptions& options, const LaunchPlan& plan, const std::map<std::string, std::string>& env);

}  // namespace strun::launcher
