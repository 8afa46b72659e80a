#include "strun/daemon/accounting.h"

#include <gtest/gtest.h>

namespace strun::daemon {
namespace {

// Steps every second from t=100: step s at 100+s.
void Steps(RecoveryAccounting& a, long long from, long long to, double t0) {
  for (long long s = from; s <= to; ++s) a.OnProgress(s, t0 + double(s - from));
}

TEST(RecoveryAccounting, NoFaultsMeansFullGoodput) {
  RecoveryAccounting a;
  Steps(a, 0, 10, 100);
  auto s = a.Summarize(120);
  EXPECT_DOUBLE_EQ(s.wall_s, 20);
  EXPECT_DOUBLE_EQ(s.lost_s, 0);
  EXPECT_DOUBLE_EQ(s.goodput, 1);
  EXPECT_EQ(s.high_water_step, 10);
}

TEST(RecoveryAccounting, LostTimeRunsFromTheLastProgressToTheFirstNewStep) {
  RecoveryAccounting a;
  Steps(a, 0, 10, 100);                 // step 10 at t=110
  a.OnFault(112);                       // fault 2 s after the last progress
  EXPECT_FALSE(a.OnProgress(6, 120));   // resumed from the checkpoint of step 5
  EXPECT_FALSE(a.OnProgress(10, 124));  // redone up to the high-water step
  auto lost = a.OnProgress(11, 125);    // beyond it: recovered
  ASSERT_TRUE(lost.has_value());
  EXPECT_DOUBLE_EQ(*lost, 15);  // 110 -> 125
  auto s = a.Summarize(130);
  EXPECT_DOUBLE_EQ(s.lost_s, 15);
  EXPECT_DOUBLE_EQ(s.wall_s, 30);
  EXPECT_DOUBLE_EQ(s.goodput, 0.5);
  EXPECT_EQ(s.faults, 1);
}

TEST(RecoveryAccounting, AFaultDuringRecoveryAddsNoTimeOfItsOwn) {
  RecoveryAccounting a;
  Steps(a, 0, 4, 100);  // step 4 at 104
  a.OnFault(105);
  a.OnProgress(3, 110);
  a.OnFault(111);  // fails again before getting past step 4
  auto lost = a.OnProgress(5, 120);
  ASSERT_TRUE(lost.has_value());
  EXPECT_DOUBLE_EQ(*lost, 16);  // 104 -> 120, once
  EXPECT_EQ(a.Summarize(120).faults, 2);
}

TEST(RecoveryAccounting, AnOpenFaultLosesTimeUntilNow) {
  RecoveryAccounting a;
  Steps(a, 0, 2, 100);
  a.OnFault(103);
  auto s = a.Summarize(112);
  EXPECT_DOUBLE_EQ(s.lost_s, 10);  // 102 -> 112
  EXPECT_DOUBLE_EQ(s.wall_s, 12);
}

TEST(RecoveryAccounting, AFaultBeforeAnyProgressCountsFromTheFault) {
  RecoveryAccounting a;
  a.OnFault(50);
  auto lost = a.OnProgress(0, 60);
  ASSERT_TRUE(lost.has_value());
  EXPECT_DOUBLE_EQ(*lost, 10);
  auto s = a.Summarize(70);
  EXPECT_DOUBLE_EQ(s.wall_s, 20);
  EXPECT_DOUBLE_EQ(s.goodput, 0.5);
}

TEST(RecoveryAccounting, CountsLaunchesRestartsRelaunchesRequeuesAndNodes) {
  RecoveryAccounting a;
  a.CountLaunch();
  a.CountLaunch();
  a.CountRestart();
  a.CountRelaunch();
  a.CountRequeue();
  a.CountExcludedNode();
  auto s = a.Summarize(0);
  EXPECT_EQ(s.launches, 2);
  EXPECT_EQ(s.restarts, 1);
  EXPECT_EQ(s.relaunches, 1);
  EXPECT_EQ(s.requeues, 1);
  EXPECT_EQ(s.nodes_excluded, 1);
  EXPECT_DOUBLE_EQ(s.goodput, 1);
}

TEST(RecoveryAccounting, ARequeuedJobContinuesFromTheSummaryLine) {
  RecoveryAccounting first;
  first.CountLaunch();
  Steps(first, 0, 10, 100);  // step 10 at 110
  first.OnFault(111);        // pre-emption
  first.CountRequeue();
  nlohmann::json line = first.ToJson(112);
  EXPECT_DOUBLE_EQ(line["time_lost_s"].get<double>(), 2);

  RecoveryAccounting second;
  second.Restore(line);
  second.CountLaunch();
  EXPECT_FALSE(second.OnProgress(9, 200));  // resumed from a checkpoint below the high-water step
  auto lost = second.OnProgress(11, 202);
  ASSERT_TRUE(lost.has_value());
  EXPECT_DOUBLE_EQ(*lost, 92);  // 110 -> 202, the time in the queue included
  auto s = second.Summarize(210);
  EXPECT_EQ(s.launches, 2);
  EXPECT_EQ(s.requeues, 1);
  EXPECT_EQ(s.faults, 1);
  EXPECT_DOUBLE_EQ(s.wall_s, 110);
  EXPECT_DOUBLE_EQ(s.lost_s, 92);
}

TEST(RecoveryAccounting, ARestoreWithoutAFaultOnRecordReopensFromTheLastProgress) {
  RecoveryAccounting first;
  Steps(first, 0, 3, 100);
  RecoveryAccounting second;
  second.Restore(first.ToJson(104));
  auto lost = second.OnProgress(4, 150);
  ASSERT_TRUE(lost.has_value());
  EXPECT_DOUBLE_EQ(*lost, 47);  // 103 -> 150
}

TEST(RecoveryAccounting, RestoreIgnoresGarbage) {
  RecoveryAccounting a;
  a.Restore(nlohmann::json("nonsense"));
  a.Restore(nlohmann::json::object({{"launches", "x"}}));
  EXPECT_EQ(a.Summarize(0).launches, 0);
  a.Restore(
      nlohmann::json::object({{"launches", 2}, {"state", {{"first_progress", "yesterday"}}}}));
  EXPECT_EQ(a.Summarize(0).launches, 0) << "a damaged line restores nothing";
  EXPECT_DOUBLE_EQ(a.Summarize(10).wall_s, 0);
}

}  // namespace
}  // namespace strun::daemon
