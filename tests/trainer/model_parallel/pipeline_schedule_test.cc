// nanotron's pipeline engines (engine.py) and stage split (models/base.py) as pure schedules; a
// simulation runs every stage's schedule at once with buffered sends and blocking receives.
#include "parallel/pipeline_schedule.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>

namespace strun::parallel {
namespace {

using Kind = PipelineAction::Kind;

std::vector<PipelineAction> Schedule(PipelineSchedule s, int stages, int stage, int m) {
  auto r = StageSchedule(s, stages, stage, m);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::vector<PipelineAction>{};
}

// Compute actions only: "F0 F1 B0 ...".
std::string Compute(const std::vector<PipelineAction>& actions) {
  std::string out;
  for (const auto& a : actions) {
    if (a.kind == Kind::kForward || a.kind == Kind::kBackward) {
      out += (out.empty() ? "" : " ") + FormatAction(a);
    }
  }
  return out;
}

TEST(PipelineScheduleTest, AllForwardAllBackwardWithCommunication) {
  EXPECT_EQ(FormatSchedule(Schedule(PipelineSchedule::kAllForwardAllBackward, 2, 0, 2)),
            "F0, send_act 0->1, F1, send_act 1->1, recv_grad 0<-1, B0, recv_grad 1<-1, B1");
  EXPECT_EQ(FormatSchedule(Schedule(PipelineSchedule::kAllForwardAllBackward, 2, 1, 2)),
            "recv_act 0<-0, F0, recv_act 1<-0, F1, B0, send_grad 0->0, B1, send_grad 1->0");
}

TEST(PipelineScheduleTest, OneForwardOneBackwardWarmsUpPpMinusStageMinusOne) {
  const auto s = PipelineSchedule::kOneForwardOneBackward;
  EXPECT_EQ(Compute(Schedule(s, 4, 0, 6)), "F0 F1 F2 F3 B0 F4 B1 F5 B2 B3 B4 B5");
  EXPECT_EQ(Compute(Schedule(s, 4, 1, 6)), "F0 F1 F2 B0 F3 B1 F4 B2 F5 B3 B4 B5");
  EXPECT_EQ(Compute(Schedule(s, 4, 3, 6)), "F0 B0 F1 B1 F2 B2 F3 B3 F4 B4 F5 B5");
  EXPECT_EQ(Compute(Schedule(s, 4, 0, 3)), "F0 F1 F2 B0 B1 B2");
  EXPECT_EQ(Compute(Schedule(s, 1, 0, 2)), "F0 B0 F1 B1");
  auto too_few = StageSchedule(s, 4, 0, 2);
  ASSERT_FALSE(too_few.ok());
  EXPECT_NE(too_few.error().message.find("at least pp - 1 = 3"), std::string::npos);
}

// Runs all stages together: a send appends to its channel at once, a receive waits until its
// message is there and checks it is the expected micro-batch. Returns "" or what went wrong.
std::string Simulate(PipelineSchedule s, int stages, int m, int* max_live_on_stage0) {
  std::vector<std::vector<PipelineAction>> plans;
  for (int st = 0; st < stages; ++st) plans.push_back(Schedule(s, stages, st, m));
  std::vector<size_t> pc(stages, 0);
  std::map<std::pair<int, int>, std::deque<int>> act, grad;  // (from, to) -> micro-batches
  std::vector<int> live(stages, 0);
  *max_live_on_stage0 = 0;
  for (bool progress = true; progress;) {
    progress = false;
    for (int st = 0; st < stages; ++st) {
      while (pc[st] < plans[st].size()) {
        const PipelineAction& a = plans[st][pc[st]];
        if (a.kind == Kind::kRecvActivation || a.kind == Kind::kRecvGrad) {
          auto& q = (a.kind == Kind::kRecvActivation ? act : grad)[{a.peer_stage, st}];
          if (q.empty()) break;  // blocks
          if (q.front() != a.micro_batch) {
            return "stage " + std::to_string(st) + " expected " + FormatAction(a) + ", got " +
                   std::to_string(q.front());
          }
          q.pop_front();
        } else if (a.kind == Kind::kSendActivation) {
          act[{st, a.peer_stage}].push_back(a.micro_batch);
        } else if (a.kind == Kind::kSendGrad) {
          grad[{st, a.peer_stage}].push_back(a.micro_batch);
        } else {
          live[st] += a.kind == Kind::kForward ? 1 : -1;
          if (st == 0) *max_live_on_stage0 = std::max(*max_live_on_stage0, live[0]);
        }
        ++pc[st];
        progress = true;
      }
    }
  }
  for (int st = 0; st < stages; ++st) {
    if (pc[st] != plans[st].size()) {
      return "deadlock: stage " + std::to_string(st) + " waits at " +
             FormatAction(plans[st][pc[st]]);
    }
    if (live[st] != 0) return "stage " + std::to_string(st) + " left activations";
  }
  for (const auto& [k, q] : act)
    if (!q.empty()) return "unreceived activations";
  for (const auto& [k, q] : grad)
    if (!q.empty()) return "unreceived gradients";
  return "";
}

TEST(PipelineScheduleTest, SchedulesCompleteTogetherWithoutDeadlock) {
  for (auto s :
       {PipelineSchedule::kAllForwardAllBackward, PipelineSchedule::kOneForwardOneBackward}) {
    for (int stages = 1; stages <= 4; ++stages) {
      for (int m = std::max(1, stages - 1); m <= 8; ++m) {
        int max_live = 0;
        EXPECT_EQ(Simulate(s, stages, m, &max_live), "")
            << "schedule " << static_cast<int>(s) << " pp=" << stages << " m=" << m;
        // 1f1b bounds the activations the first stage holds by pp; afab holds all m.
        EXPECT_EQ(max_live,
                  s == PipelineSchedule::kAllForwardAllBackward ? m : std::min(m, stages));
      }
    }
  }
}

TEST(PipelineScheduleTest, SplitsLlamaBlocksByCumulativeCostAsNanotron) {
  // layer: 4*4*4*16 + 3*32*16 = 2560; lm_head 64*16 = 1024; total 11264, half 5632. The layer
  // that crosses the threshold stays on the stage, so stage 0 gets three layers.
  const auto costs = LlamaBlockCosts({4, 16, 4, 32, 64});
  EXPECT_EQ(costs, (std::vector<int64_t>{0, 2560, 2560, 2560, 2560, 0, 1024, 0, 0}));
  EXPECT_EQ(AssignBlocksToStages(costs, 2), (std::vector<int>{0, 0, 0, 0, 1, 1, 1, 1, 1}));
  EXPECT_EQ(AssignBlocksToStages(costs, 1), std::vector<int>(9, 0));
  // Equal costs over 4 stages: thresholds 1/4, 2/4, 3/4 of 8.
  EXPECT_EQ(AssignBlocksToStages({1, 1, 1, 1, 1, 1, 1, 1}, 4),
            (std::vector<int>{0, 0, 0, 1, 1, 2, 2, 3}));
}

}  // namespace
}  // namespace strun::parallel
