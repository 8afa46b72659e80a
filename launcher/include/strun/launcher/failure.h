// strun/launcher/failure.h: worker failures, torchrun's error.json contract, the failure summary.
//
// Each worker gets TORCHELASTIC_ERROR_FILE=<attempt dir>/<local rank>/error.json. A worker whose
// entry point is decorated with torch's @record writes
//   {"message": {"message": "...", "extraInfo": {"py_callstack": "...", "timestamp": "<epoch s>"}}}
// there (or {"message": "...", "timestamp": N}). When a group fails, the failure with the
// earliest timestamp (the error file's, else the moment strun saw the worker exit) across every
// node is the root cause. If strun itself runs with TORCHELASTIC_ERROR_FILE set (under another
// agent), the root cause's error file is copied there with message.errorCode set to the worker's
// exit code in torchrun's convention (-N for signal N), exactly as torchrun's
// ErrorHandler.dump_error_file does; nothing is written when the root cause left no error file.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::launcher {

struct WorkerFailure {
  int rank = 0;
  int local_rank = 0;
  std::string node;
  int pid = 0;
  int exitcode = 0;               // torchrun's convention: -N for signal N
  double timestamp = 0;           // seconds since the epoch
  std::string error_file;         // "<N/A>" when the worker wrote none
  std::string error_data;         // the error file's JSON text, "" when none
  std::string message;            // traceback, message, or "Signal 9 (SIGKILL) received by PID 123"
  std::vector<std::string> tail;  // last lines of the worker's output
  // Classification (ClassifyFailure): one of the kinds below, and the evidence it rests on.
  std::string kind;
  std::string evidence;
  long long step = -1;  // the worker's last reported step (progress.h), -1 when none

  // Shell convention (what strun exits with): the code, or 128+N for signal N.
  int ShellExitCode() const { return exitcode < 0 ? 128 - exitcode : exitcode; }
  nlohmann::json ToJson() const;
  static WorkerFailure FromJson(const nlohmann::json& j);
};

// Failure kinds, as they appear in JSON, summaries and strund's event log:
//   exit_code      exited with a non-zero code (evidence: the code, the error file's message)
//   signal         killed by a signal not covered below (evidence: the signal)
//   nccl_watchdog  PyTorch's NCCL watchdog aborted it (SIGABRT, or an exit, with the watchdog's
//                  message in its output; evidence: that line)
//   cuda_oom       CUDA out of memory (evidence: the line)
//   hang           no progress within its timeout (progress.h); strun killed it
//   spawn          could not be started (evidence: why)
//   lost_agent     the strun agent of a node vanished (its connection dropped)
//   node_down      Slurm marks a node of the step DOWN, DRAIN, FAIL or NOT_RESPONDING (strund)
//   preempted      a pre-emption or time-limit signal (strund)
inline constexpr const char* kFailureKinds[] = {"exit_code",  "signal",    "nccl_watchdog",
                                                "cuda_oom",   "hang",      "spawn",
                                                "lost_agent", "node_down", "preempted"};

// Sets kind and evidence from the exit code, message and output tail, unless kind is set already.
void ClassifyFailure(WorkerFailure& failure);

// Fills error_file/error_data/message/timestamp from `path` when it holds a valid error file;
// otherwise error_file = "<N/A>", message from the exit code, timestamp = `seen_at`.
void ReadErrorFile(const std::string& path, double seen_at, WorkerFailure& failure);

// The root cause: earliest timestamp, ties broken by rank. `failures` must not be empty.
const WorkerFailure& RootCause(const std::vector<WorkerFailure>& failures);

// torchrun's dump_error_file: copies the root cause's error data to `parent_error_file` with
// message.errorCode = exitcode. Returns an error if the file cannot be written.
Status WriteParentErrorFile(const std::string& parent_error_file, const WorkerFailure& root);

// The summary printed when the job fails: title, root cause with its traceback and last output
// lines, then one line per other failure.
std::string FormatFailureSummary(const std::string& title, const WorkerFailure& root,
                                 const std::vector<WorkerFailure>& others);

// One line: "rank 3 (local_rank 1) on nid002 exited with code 1" / "was killed by SIGKILL".
std::string DescribeFailure(const WorkerFailure& f);

}  // namespace strun::launcher
