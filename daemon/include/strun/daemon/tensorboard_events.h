// strun/daemon/tensorboard_events.h: strund's events in TensorBoard, next to the loss curves.
//
// With `--tensorboard-dir DIR` (else STRUN_TENSORBOARD_DIR, the variable that also turns on
// strun-train's curves), strund writes DIR/strund_<job id>/events.out.tfevents.<time>.<host>.
// <pid>.strund: its own TensorBoard run, because strund does not know the trainer's run name
// (general.run, resolved inside strun-train); the job id stays the same across requeues, so every
// strund of a job appends a file to the same folder. It holds:
//   * text "strund/events" at step N: the N-th line (from 1) of this job in the event log
//     (event_log.h), as JSON; progress lines are counted but not copied;
//   * scalars at the training step (the highest step reported so far, 0 before the first), after
//     every event but progress: strund/restarts, strund/relaunches, strund/requeues,
//     strund/nodes_excluded, strund/faults, strund/time_lost_s and strund/goodput (accounting.h,
//     cumulative over the job's requeues). TensorBoard shows the last value written per step.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "strun/daemon/accounting.h"
#include "strun/result.h"

namespace strun::tfevents {
class EventFile;
}

namespace strun::daemon {

class TensorBoardEvents {
 public:
  // Creates DIR/strund_<job_id>/ and the file; `lines_before` is the number of this job's lines
  // already in the event log (earlier strunds of the job). Errors name the path.
  static Result<std::unique_ptr<TensorBoardEvents>> Open(const std::string& dir,
                                                         const std::string& job_id,
                                                         int64_t lines_before, double now);
  ~TensorBoardEvents();
  TensorBoardEvents(const TensorBoardEvents&) = delete;
  TensorBoardEvents& operator=(const TensorBoardEvents&) = delete;

  // One line of the event log (MakeEventLine's) and the accounting after it; one write(2).
  Status Add(const nlohmann::json& line, const AccountingSummary& totals);
  const std::string& path() const;

 private:
  TensorBoardEvents(std::unique_ptr<tfevents::EventFile> file, int64_t lines_before);
  std::unique_ptr<tfevents::EventFile> file_;
  int64_t lines_ = 0;
};

}  // namespace strun::daemon
