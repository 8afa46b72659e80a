// The coordination state machine: start together, stop together, restart together.
#include <gtest/gtest.h>

#include "strun/launcher/coordination.h"

namespace strun::launcher {
namespace {

Json Msg(const std::string& type, int attempt) { return {{"type", type}, {"attempt", attempt}}; }

Json Failed(int attempt, int rank, double ts, int exitcode = 1) {
  WorkerFailure f;
  f.rank = rank;
  f.timestamp = ts;
  f.exitcode = exitcode;
  f.node = "n" + std::to_string(rank);
  return {{"type", "failed"}, {"attempt", attempt}, {"failures", Json::array({f.ToJson()})}};
}

class GroupStateTest : public ::testing::Test {
 protected:
  GroupState Make(int agents, int restarts) {
    return GroupState(agents, restarts, "10.0.0.1", [this] { return ++port_; });
  }
  int port_ = 40000;
};

TEST_F(GroupStateTest, StartsWhenEveryAgentIsReady) {
  GroupState g = Make(3, 0);
  EXPECT_TRUE(g.OnMessage(0, Msg("ready", 0)).empty());
  EXPECT_TRUE(g.OnMessage(2, Msg("ready", 0)).empty());
  EXPECT_TRUE(g.OnMessage(2, Msg("ready", 0)).empty());  // duplicates do not count twice
  auto out = g.OnMessage(1, Msg("ready", 0));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].target, -1);
  EXPECT_EQ(out[0].message["type"], "start");
  EXPECT_EQ(out[0].message["restart_count"], 0);
  EXPECT_EQ(out[0].message["master_addr"], "10.0.0.1");
  EXPECT_EQ(out[0].message["master_port"], 40001);
}

TEST_F(GroupStateTest, SuccessNeedsEveryAgent) {
  GroupState g = Make(2, 0);
  g.OnMessage(0, Msg("ready", 0));
  g.OnMessage(1, Msg("ready", 0));
  EXPECT_TRUE(g.OnMessage(0, Msg("succeeded", 0)).empty());
  auto out = g.OnMessage(1, Msg("succeeded", 0));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].message["type"], "exit");
  EXPECT_EQ(out[0].message["code"], 0);
  EXPECT_TRUE(g.finished());
}

TEST_F(GroupStateTest, FailureStopsEveryoneThenRestartsWithNewPort) {
  GroupState g = Make(2, 1);
  g.OnMessage(0, Msg("ready", 0));
  g.OnMessage(1, Msg("ready", 0));
  auto out = g.OnMessage(1, Failed(0, 3, 100));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].message["type"], "stop");
  EXPECT_NE(out[0].message["reason"].get<std::string>().find("rank 3"), std::string::npos);
  EXPECT_TRUE(g.OnMessage(1, Msg("stopped", 0)).empty());  // waits for agent 0
  out = g.OnMessage(0, Msg("stopped", 0));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].message["type"], "start");
  EXPECT_EQ(out[0].message["attempt"], 1);
  EXPECT_EQ(out[0].message["restart_count"], 1);
  EXPECT_EQ(out[0].message["master_port"], 40002);
  // Late messages about the old attempt are ignored.
  EXPECT_TRUE(g.OnMessage(0, Failed(0, 1, 99)).empty());
}

TEST_F(GroupStateTest, BudgetSpentExitsWithRootCauseCode) {
  GroupState g = Make(2, 0);
  g.OnMessage(0, Msg("ready", 0));
  g.OnMessage(1, Msg("ready", 0));
  g.OnMessage(1, Failed(0, 3, 100, -9));
  g.OnMessage(0, Failed(0, 0, 50, 2));  // earlier: the root cause
  g.OnMessage(0, Msg("stopped", 0));
  auto out = g.OnMessage(1, Msg("stopped", 0));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].message["type"], "exit");
  EXPECT_EQ(out[0].message["code"], 2);
  EXPECT_EQ(out[0].message["root_cause"]["rank"], 0);
  EXPECT_EQ(out[0].message["failures"].size(), 2u);
}

TEST_F(GroupStateTest, SignalExitCodeIs128PlusN) {
  GroupState g = Make(1, 0);
  g.OnMessage(0, Msg("ready", 0));
  g.OnMessage(0, Failed(0, 0, 1, -11));
  auto out = g.OnMessage(0, Msg("stopped", 0));
  EXPECT_EQ(out[0].message["code"], 139);
}

TEST_F(GroupStateTest, AbortAndLostAgent) {
  GroupState g = Make(2, 5);
  g.OnMessage(0, Msg("ready", 0));
  g.OnMessage(1, Msg("ready", 0));
  auto out = g.OnMessage(1, {{"type", "aborted"}, {"code", 143}, {"reason", "SIGTERM"}});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].message["type"], "exit");
  EXPECT_EQ(out[0].message["code"], 143);
  EXPECT_TRUE(g.OnAgentLost(1).empty());  // finished already

  GroupState h = Make(2, 5);
  h.OnMessage(0, Msg("ready", 0));
  out = h.OnAgentLost(1);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].message["code"], 1);
  EXPECT_NE(out[0].message["reason"].get<std::string>().find("agent 1"), std::string::npos);
}

TEST_F(GroupStateTest, JoinTimeoutNamesMissingAgents) {
  GroupState g = Make(3, 0);
  g.OnMessage(1, Msg("ready", 0));
  auto out = g.OnJoinTimeout();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_NE(out[0].message["reason"].get<std::string>().find("only 1 of 3"), std::string::npos);
  EXPECT_NE(out[0].message["reason"].get<std::string>().find("0,2"), std::string::npos);
}

}  // namespace
}  // namespace strun::launcher
