#include "train/stop_vote.h"

#include <fmt/format.h>

#include "train/stop_request.h"

namespace strun::train {

double StopVote::Cast(int64_t step, int64_t train_steps, const TrainLogger& log) {
  const int signal = StopSignal();
  if (signal != 0 && !noticed_) {
    noticed_ = true;
    log.Warning(step < train_steps
                    ? fmt::format("{} received: every rank checkpoints after step {} and exits",
                                  StopSignalName(signal), step)
                    : fmt::format("{} received during the last step: the run ends as usual",
                                  StopSignalName(signal)));
  }
  return signal != 0 ? 1.0 : 0.0;
}

std::string StopVote::Reason() {
  return StopSignal() != 0 ? StopSignalName(StopSignal()) : "signal received by another rank";
}

}  // namespace strun::train
