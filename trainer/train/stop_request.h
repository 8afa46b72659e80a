// train/stop_request.h: pre-emption and time-limit signals, turned into a flag that the training
// loop reads at step boundaries.
//
// Slurm warns a job before its time limit or pre-emption with a signal (`--signal=B:USR1@N`,
// forwarded to the workers by strun) and ends it with SIGTERM. strun-train answers the first
// SIGUSR1, SIGTERM or SIGINT by checkpointing at the next step boundary and exiting 0, so that the
// job can be requeued and resume. A second SIGTERM or SIGINT while that is pending means "stop
// now": the process exits at once with 128 + the signal's number (a launcher tearing a group down
// can always send two). SIGPIPE is ignored: a vanished reader of stdout or of the progress channel
// must not kill training.
//
// The handlers only touch a sig_atomic_t (async-signal-safe); the loop polls StopSignal().
#pragma once

#include <string>

#include "strun/result.h"

namespace strun::train {

// Installs the handlers of SIGUSR1, SIGTERM and SIGINT and ignores SIGPIPE.
Status InstallStopSignalHandlers();

// The first stop signal received since the handlers were installed, 0 when none.
int StopSignal();

// "SIGUSR1", "SIGTERM", "SIGINT", or "signal N".
std::string StopSignalName(int signal_number);

}  // namespace strun::train
