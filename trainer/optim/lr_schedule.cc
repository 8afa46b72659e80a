#include "optim/lr_schedule.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace strun::optim {

Result<WarmupStyle> ParseWarmupStyle(const std::string& name, const std::string& key) {
  if (name == "linear") return WarmupStyle::kLinear;
  if (name == "constant") return WarmupStyle::kConstant;
  return MakeError(
      fmt::format("{}: '{}' is not a warm-up style; use 'linear' or 'constant'", key, name));
}

Result<DecayStyle> ParseDecayStyle(const std::string& name, const std::string& key) {
  if (name == "linear") return DecayStyle::kLinear;
  if (name == "cosine") return DecayStyle::kCosine;
  if (name == "1-sqrt") return DecayStyle::kOneMinusSqrt;
  return MakeError(
      fmt::format("{}: '{}' is not a decay style; use 'linear', 'cosine' or '1-sqrt'", key, name));
}

LrSchedule::LrSchedule(const LrScheduleOptions& o) : options_(o) {
  min_decay_lr_ = o.min_decay_lr.value_or(o.learning_rate);
  if (o.lr_decay_steps) {
    decay_steps_ = *o.lr_decay_steps;
  } else {
    decay_steps_ =
        o.total_training_steps - o.lr_warmup_steps - o.lr_decay_starting_step.value_or(0);
  }
  decay_starting_step_ = o.lr_decay_starting_step.value_or(o.lr_warmup_steps);
}

double LrSchedule::Lambda(int64_t step) const {
  // LambdaLR applies base_lr * (lambda / initial_lr); keep that rounding.
  const double lr = options_.learning_rate;
  const double v = RawLambda(step);
  return lr == 0 ? v : v / lr * lr;
}

double LrSchedule::RawLambda(int64_t step) const {
  const double lr = options_.learning_rate;
  const int64_t warmup = options_.lr_warmup_steps;
  if (warmup == 0 && decay_steps_ == 0) return lr;
  if (step <= warmup) {
    if (options_.lr_warmup_style == WarmupStyle::kLinear) {
      return lr * static_cast<double>(step) / static_cast<double>(std::max<int64_t>(warmup, 1));
    }
    return lr;
  }
  if (step < decay_starting_step_) return lr;
  if (step < decay_starting_step_ + decay_steps_) {
    const double into = static_cast<double>(step - decay_starting_step_);
    const double len = static_cast<double>(decay_steps_);
    switch (options_.lr_decay_style) {
      case DecayStyle::kCosine:
        return min_decay_lr_ + (lr - min_decay_lr_) * (1 + std::cos(M_PI * into / len)) / 2;
      case DecayStyle::kLinear:
        return min_decay_lr_ + (lr - min_decay_lr_) * (len - into) / len;
      case DecayStyle::kOneMinusSqrt:
        return min_decay_lr_ + (lr - min_decay_lr_) * (1 - std::sqrt(into / len));
    }
  }
  return min_decay_lr_;
}

}  // namespace strun::optim
