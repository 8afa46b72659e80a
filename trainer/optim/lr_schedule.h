// optim/lr_schedule.h: nanotron's learning-rate schedule (helpers.py lr_scheduler_builder at
// nanotron 5f8a52b0): warm-up, an optional constant phase, decay to min_decay_lr, then constant.
//
// One deliberate difference: nanotron wraps its lambda in torch's LambdaLR, which evaluates it at
// 0 on construction, so optimizer step k runs with lambda(k - 1) and step 1 with a learning rate
// of 0 under linear warm-up (a known bug). Here optimizer step k runs with lambda(k):
// LearningRateAt(k). NanotronLearningRateAt(k) = lambda(k - 1) is kept for comparisons.
// Pure arithmetic, no libtorch.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "strun/result.h"

namespace strun::optim {

enum class WarmupStyle { kLinear, kConstant };
enum class DecayStyle { kLinear, kCosine, kOneMinusSqrt };

// nanotron's names: "linear", "constant" / "linear", "cosine", "1-sqrt". The error names `key`.
Result<WarmupStyle> ParseWarmupStyle(const std::string& name, const std::string& key);
Result<DecayStyle> ParseDecayStyle(const std::string& name, const std::string& key);

// optimizer.learning_rate_scheduler (LRSchedulerArgs after nanotron's __post_init__ defaults)
// plus tokens.train_steps.
struct LrScheduleOptions {
  double learning_rate = 0.0;
  int64_t lr_warmup_steps = 0;
  WarmupStyle lr_warmup_style = WarmupStyle::kLinear;
  DecayStyle lr_decay_style = DecayStyle::kLinear;
  std::optional<int64_t> lr_decay_steps;          // default: total - warmup - decay_starting_step
  std::optional<int64_t> lr_decay_starting_step;  // default: lr_warmup_steps
  std::optional<double> min_decay_lr;             // default: learning_rate
  int64_t total_training_steps = 0;
};

class LrSchedule {
 public:
  explicit LrSchedule(const LrScheduleOptions& options);

  // The learning rate of optimizer step `step` (1-based): the schedule's value at `step`.
  double LearningRateAt(int64_t step) const { return Lambda(step); }
  // What nanotron uses for optimizer step `step` (its LambdaLR lags one step).
  double NanotronLearningRateAt(int64_t step) const { return Lambda(step - 1); }

  // nanotron's lr_lambda(current_step) * initial_lr, for any step >= 0.
  double Lambda(int64_t current_step) const;

  int64_t decay_steps() const { return decay_steps_; }
  int64_t decay_starting_step() const { return decay_starting_step_; }

 private:
  double RawLambda(int64_t current_step) const;

  LrScheduleOptions options_;
  double min_decay_lr_;
  int64_t decay_steps_;
  int64_t decay_starting_step_;
};

}  // namespace strun::optim
