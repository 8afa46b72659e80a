// train/stop_vote.h: every rank stops after the same step when any of them got a stop signal
// (stop_request.h). Each rank's vote rides on the step's loss all-reduce (train/step.h), so the
// vote costs no collective of its own.
#pragma once

#include <cstdint>
#include <string>

#include "train/iteration_log.h"

namespace strun::train {

class StopVote {
 public:
  // This rank's vote at `step`: 1 once a stop signal arrived (with a warning the first time), 0
  // before.
  double Cast(int64_t step, int64_t train_steps, const TrainLogger& log);
  // Whether the run stops after `step` given the DP mean of the votes (any rank's vote makes it
  // > 0). After the last step a stop request changes nothing: the run ends as it would have.
  static bool Carried(double mean_vote, int64_t step, int64_t train_steps) {
    return step < train_steps && mean_vote > 0;
  }
  // What made the run stop, for the log: this rank's signal, or another rank's.
  static std::string Reason();

 private:
  bool noticed_ = false;
};

}  // namespace strun::train
