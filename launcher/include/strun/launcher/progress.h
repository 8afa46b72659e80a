// strun/launcher/progress.h: the progress channel between a worker and its strun agent.
//
// Protocol (version 1), usable from any language
// ----------------------------------------------
// strun gives every worker one end of a Unix socket pair (SOCK_SEQPACKET: each write(2) is one
// record, delivered whole or not at all) and its number in STRUN_PROGRESS_FD. A worker that wants
// hang detection and recovery accounting writes one JSON object per line to that fd:
//
//   {"phase": "startup"}                      once, early (arms the start-up timeout)
//   {"phase": "training", "step": 12}         after each finished optimizer step
//   {"phase": "checkpoint", "step": 100}      before a checkpoint write (the generous timeout)
//   {"phase": "preempted", "step": 57}        a pre-emption checkpoint of step 57 is complete and
//   the
//                                             worker is about to exit 0 so the job can be requeued
//
// Each line must be shorter than 512 bytes and end with '\n'. Writes should be non-blocking: a
// report that does not fit into the socket is dropped, training never waits for its agent. Without
// STRUN_PROGRESS_FD (under torchrun, by hand) there is nothing to do. From Python:
//
//   fd = int(os.environ.get("STRUN_PROGRESS_FD", "-1"))
//   if fd >= 0: os.set_blocking(fd, False)
//   ...
//   if fd >= 0: os.write(fd, b'{"phase": "training", "step": %d}\n' % step)
//
// What the agent does with it (agent.h): a worker that never writes is never declared hung. Once
// a worker has reported, the agent expects its next report within
//   * --startup-timeout seconds (default 900) in the phases "startup" and "checkpoint", and
//   * --hang-timeout seconds in "training" when given, else max(--hang-timeout-floor (default 60),
//     --hang-timeout-factor (default 5) x the slowest of the last 20 step times it observed).
// A worker past its deadline is declared hung: it is killed (SIGKILL, so a stopped process goes
// too), the failure is classified "hang" with the overdue time as evidence, and the group restarts
// as for any other failure. Steps also reach the job's coordination service, which uses them for
// the same-step rule (a failure that repeats at the step of the previous one, without a step done
// in between, stops the job) and for time-lost accounting.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace strun::launcher {

enum class ProgressPhase { kStartup, kTraining, kCheckpoint, kPreempted };

std::string_view ProgressPhaseName(ProgressPhase phase);

struct ProgressReport {
  ProgressPhase phase = ProgressPhase::kStartup;
  long long step = -1;  // -1 when the report has none
};

// Parses one line of the protocol (without its '\n'); nullopt for anything else, which the agent
// ignores (a worker writing garbage must not take its job down).
std::optional<ProgressReport> ParseProgressLine(std::string_view line);

// The line (with '\n') for a report.
std::string FormatProgressLine(const ProgressReport& report);

// The worker side: reports to $STRUN_PROGRESS_FD, or does nothing when it is not set or invalid.
// Never blocks and never raises SIGPIPE (a worker outliving its agent keeps running).
class ProgressReporter {
 public:
  // Reads STRUN_PROGRESS_FD from the environment.
  ProgressReporter();
  explicit ProgressReporter(int fd);
  bool enabled() const { return fd_ >= 0; }
  void Report(ProgressPhase phase, long long step = -1);

 private:
  int fd_ = -1;
};

}  // namespace strun::launcher
