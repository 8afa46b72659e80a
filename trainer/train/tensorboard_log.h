// train/tensorboard_log.h: rank 0's loss curves as TensorBoard event files (--tensorboard-dir DIR
// or STRUN_TENSORBOARD_DIR; the flag wins).
//
// One file per start of strun-train, DIR/<general.run>/events.out.tfevents.<time>.<host>.<pid>.
// strun-train, holding:
//   * the resolved config as text (tag "config"): at step 0 of a fresh run, at the first step it
//     trains of a resumed one;
//   * for every iteration line, at its step, one scalar per value of the line with the line's
//     tag (lm_loss, lr, grad_norm, tokens_per_sec, model_tflops_per_gpu, cuda_memory_allocated,
//     ...) and the line's full-precision value (as float, TensorBoard's simple_value).
// A resumed run writes nothing for steps <= the checkpoint's step, and first a SessionLog START at
// the checkpoint's step + 1, so that TensorBoard drops the values a crashed run logged after that
// checkpoint and shows the re-trained ones (README.md, "TensorBoard").
//
// Writes run on a thread of their own, one write(2) per logged step, so a slow disk does not stall
// training; a failed write (or a backlog of kMaxBacklog steps) is reported once as a warning and
// ends the output, never training.
// Built without protobuf (a Slurm-free build on a host without it), Open warns that the output
// is off and returns null.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "train/iteration_log.h"

namespace strun::train {

// The folder: `flag` when not empty, else $STRUN_TENSORBOARD_DIR, else "" (no output).
std::string TensorBoardDirectory(const std::string& flag);

class TensorBoardLog {
 public:
  using Warn = std::function<void(const std::string&)>;
  static constexpr std::size_t kMaxBacklog = 1000;

  // Opens DIR/<run>/ for a run that starts after `resumed_step` (-1: a fresh run). On failure
  // warns (naming the folder) and returns null: training goes on without TensorBoard output.
  // `warn` may be called from the writer thread.
  static std::unique_ptr<TensorBoardLog> Open(const std::string& dir, const std::string& run,
                                              int64_t resumed_step, Warn warn);
  ~TensorBoardLog();  // writes what is queued, then closes the file
  TensorBoardLog(const TensorBoardLog&) = delete;
  TensorBoardLog& operator=(const TensorBoardLog&) = delete;

  // The resolved config (DumpConfig's YAML).
  void Config(const std::string& yaml);
  // The values of step `step`'s iteration line.
  void Step(int64_t step, const std::vector<LogItem>& items);

 private:
  struct Impl;
  explicit TensorBoardLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace strun::train
