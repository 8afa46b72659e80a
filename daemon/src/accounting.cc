// Restarts, time lost and goodput (accounting.h).
#include "strun/daemon/accounting.h"

#include <algorithm>

namespace strun::daemon {

std::optional<double> RecoveryAccounting::OnProgress(long long step, double time) {
  if (first_progress_ < 0) first_progress_ = time;
  if (wall_start_ < 0 || time < wall_start_) wall_start_ = time;
  std::optional<double> resolved;
  if (pending_since_ >= 0 && step > pending_step_) {
    double lost = std::max(0.0, time - pending_since_);
    closed_lost_s_ += lost;
    pending_since_ = -1;
    resolved = lost;
  }
  if (step > high_water_) high_water_ = step;
  last_progress_ = std::max(last_progress_, time);
  return resolved;
}

void RecoveryAccounting::OnFault(double time) {
  ++faults_;
  if (wall_start_ < 0) wall_start_ = time;
  if (pending_since_ >= 0) return;  // still recovering from an earlier fault
  pending_since_ = last_progress_ >= 0 ? std::min(last_progress_, time) : time;
  pending_step_ = high_water_;
}

AccountingSummary RecoveryAccounting::Summarize(double now) const {
  AccountingSummary s;
  s.launches = launches_;
  s.restarts = restarts_;
  s.relaunches = relaunches_;
  s.requeues = requeues_;
  s.nodes_excluded = nodes_excluded_;
  s.faults = faults_;
  s.high_water_step = high_water_;
  s.lost_s = closed_lost_s_ + (pending_since_ >= 0 ? std::max(0.0, now - pending_since_) : 0.0);
  if (wall_start_ >= 0) s.wall_s = std::max(0.0, now - wall_start_);
  s.goodput = s.wall_s > 0 ? std::clamp(1.0 - s.lost_s / s.wall_s, 0.0, 1.0) : 1.0;
  return s;
}

nlohmann::json RecoveryAccounting::ToJson(double now) const {
  AccountingSummary s = Summarize(now);
  return {{"launches", s.launches},
          {"restarts", s.restarts},
          {"relaunches", s.relaunches},
          {"requeues", s.requeues},
          {"nodes_excluded", s.nodes_excluded},
          {"faults", s.faults},
          {"wall_s", s.wall_s},
          {"time_lost_s", s.lost_s},
          {"goodput", s.goodput},
          {"high_water_step", s.high_water_step},
          {"state",
           {{"first_progress", first_progress_},
            {"wall_start", wall_start_},
            {"last_progress", last_progress_},
            {"closed_lost_s", closed_lost_s_},
            {"pending_since", pending_since_},
            {"pending_step", pending_step_}}}};
}

void RecoveryAccounting::Restore(const nlohmann::json& summary) {
  try {
    RestoreFrom(summary);
  } catch (const nlohmann::json::exception&) {
    *this = RecoveryAccounting();  // a damaged line: start afresh rather than half-restored
  }
}

void RecoveryAccounting::RestoreFrom(const nlohmann::json& summary) {
  if (!summary.is_object()) return;
  auto num = [&](const char* key, int fallback) {
    auto it = summary.find(key);
    return it != summary.end() && it->is_number_integer() ? it->get<int>() : fallback;
  };
  launches_ = num("launches", 0);
  restarts_ = num("restarts", 0);
  relaunches_ = num("relaunches", 0);
  requeues_ = num("requeues", 0);
  nodes_excluded_ = num("nodes_excluded", 0);
  faults_ = num("faults", 0);
  auto state = summary.find("state");
  if (state == summary.end() || !state->is_object()) return;
  first_progress_ = state->value("first_progress", -1.0);
  last_progress_ = state->value("last_progress", -1.0);
  wall_start_ = state->value("wall_start", first_progress_);
  closed_lost_s_ = state->value("closed_lost_s", 0.0);
  pending_since_ = state->value("pending_since", -1.0);
  pending_step_ = state->value("pending_step", -1LL);
  high_water_ = summary.value("high_water_step", -1LL);
  if (pending_since_ < 0 && last_progress_ >= 0) {
    // The previous strund stopped the job (requeue) without a fault on record: the time since
    // its last progress report is being lost now.
    pending_since_ = last_progress_;
    pending_step_ = high_water_;
  }
}

}  // namespace strun::daemon
