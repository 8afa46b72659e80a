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
    return GroupState(agents, RestartPolicy{restarts, 1.0, 60.0, 2}, "10.0.0.1",
                      [this] { return ++port_; });
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

Json Progress(int attempt, long long step, bool preempted = false) {
  return {{"type", "progress"}, {"attempt", attempt}, {"step", step}, {"preempted", preempted}};
}

// Drives one failure of the current attempt through stop to the next start (or exit).
std::vector<Outgoing> FailAndStop(GroupState& g, int agents, int rank) {
  const int a = g.attempt();
  g.OnMessage(0, Failed(a, rank, 100 + a));
  std::vector<Outgoing> out;
  for (int i = 0; i < agents; ++i) out = g.OnMessage(i, Msg("stopped", a));
  return out;
}

TEST_F(GroupStateTest, BackOffGrowsWithoutProgressAndResetsAfterIt) {
  RestartPolicy p{10, 0.5, 1.5, 100};
  GroupState g(1, p, "a", [] { return 1; });
  g.OnMessage(0, Msg("ready", 0));
  g.OnMessage(0, Progress(0, 5));
  auto out = FailAndStop(g, 1, 0);  // first failure after progress: at once
  ASSERT_EQ(out[0].message["type"], "start");
  EXPECT_EQ(out[0].message["delay_s"], 0.0);
  out = FailAndStop(g, 1, 0);  // no step since: 0.5 s, then 1.0, then capped at 1.5
  EXPECT_EQ(out[0].message["delay_s"], 0.5);
  out = FailAndStop(g, 1, 0);
  EXPECT_EQ(out[0].message["delay_s"], 1.0);
  out = FailAndStop(g, 1, 0);
  EXPECT_EQ(out[0].message["delay_s"], 1.5);
  g.OnMessage(
      0, Progress(g.attempt(), 3));  // an old step again (resumed from a checkpoint): no progress
  out = FailAndStop(g, 1, 0);
  EXPECT_EQ(out[0].message["delay_s"], 1.5);
  g.OnMessage(0, Progress(g.attempt(), 6));  // past the high-water step: progress
  out = FailAndStop(g, 1, 0);
  EXPECT_EQ(out[0].message["delay_s"], 0.0);
}

TEST_F(GroupStateTest, RepeatedFailureAtOneStepStopsTheJob) {
  RestartPolicy p{10, 0, 0, 2};
  GroupState g(2, p, "a", [] { return 1; });
  g.OnMessage(0, Msg("ready", 0));
  g.OnMessage(1, Msg("ready", 0));
  g.OnMessage(1, Progress(0, 57));
  auto out = FailAndStop(g, 2, 3);
  ASSERT_EQ(out[0].message["type"], "start");  // once is a restart
  g.OnMessage(0, Progress(1, 50));
  g.OnMessage(0, Progress(1, 57));  // resumed from 50 and failed at 57 again
  out = FailAndStop(g, 2, 3);
  ASSERT_EQ(out[0].message["type"], "exit");
  EXPECT_EQ(out[0].message["code"], 1);
  const std::string reason = out[0].message["reason"];
  EXPECT_NE(reason.find("2 times at step 57"), std::string::npos) << reason;
  EXPECT_NE(reason.find("--max-same-step-failures=2"), std::string::npos) << reason;
}

TEST_F(GroupStateTest, SameStepRuleNeedsProgressReports) {
  // Workers that never report (plain torchrun scripts) keep torchrun's --max-restarts semantics.
  GroupState g(1, RestartPolicy{3, 0, 0, 2}, "a", [] { return 1; });
  g.OnMessage(0, Msg("ready", 0));
  for (int i = 0; i < 3; ++i) ASSERT_EQ(FailAndStop(g, 1, 0)[0].message["type"], "start") << i;
  auto out = FailAndStop(g, 1, 0);
  EXPECT_EQ(out[0].message["type"], "exit");
  EXPECT_NE(out[0].message["reason"].get<std::string>().find("all 3 restarts used"),
            std::string::npos);
}

TEST_F(GroupStateTest, PreemptionIsASuccessThatSaysSo) {
  GroupState g = Make(2, 3);
  g.OnMessage(0, Msg("ready", 0));
  g.OnMessage(1, Msg("ready", 0));
  g.OnMessage(0, Progress(0, 41, true));
  g.OnMessage(0, {{"type", "succeeded"}, {"attempt", 0}, {"preempted", true}});
  auto out = g.OnMessage(1, {{"type", "succeeded"}, {"attempt", 0}, {"preempted", false}});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].message["code"], 0);
  EXPECT_TRUE(out[0].message["preempted"].get<bool>());
  EXPECT_NE(out[0].message["reason"].get<std::string>().find("step 41"), std::string::npos);
  EXPECT_TRUE(g.outcome()["preempted"].get<bool>());

  GroupState h = Make(1, 0);
  h.OnMessage(0, Msg("ready", 0));
  out = h.OnMessage(0, {{"type", "succeeded"}, {"attempt", 0}});
  EXPECT_FALSE(out[0].message["preempted"].get<bool>());
}

TEST_F(GroupStateTest, EventsTellTheStory) {
  GroupState g = Make(2, 1);
  g.OnMessage(0, {{"type", "ready"}, {"attempt", 0}, {"node", "nid001"}});
  g.OnMessage(1, {{"type", "ready"}, {"attempt", 0}, {"node", "nid002"}});
  g.OnMessage(1, Progress(0, 1));
  g.OnMessage(1, Progress(0, 1));  // not new: no event
  WorkerFailure f;
  f.rank = 1;
  f.node = "nid002";
  f.exitcode = -6;
  f.tail = {
      "[Rank 1] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=9, OpType=ALLREDUCE) "
      "ran for 600000 milliseconds"};
  g.OnMessage(1, {{"type", "failed"}, {"attempt", 0}, {"failures", Json::array({f.ToJson()})}});
  g.OnMessage(0, Msg("stopped", 0));
  g.OnMessage(1, Msg("stopped", 0));
  g.OnMessage(0, Progress(1, 1));  // the restarted group trains again
  g.OnMessage(0, Progress(1, 2));
  g.OnAgentLost(1);
  std::vector<std::string> names;
  Json failure, lost, exit;
  for (const auto& e : g.TakeEvents()) {
    names.push_back(e["event"]);
    EXPECT_GT(e["time"].get<double>(), 1.7e9);
    if (e["event"] == "failure") failure = e;
    if (e["event"] == "agent_lost") lost = e;
    if (e["event"] == "exit") exit = e;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"agent_joined", "agent_joined", "started", "progress",
                                             "failure", "restart", "started", "resumed", "progress",
                                             "agent_lost", "exit"}));
  EXPECT_EQ(failure["kind"], "nccl_watchdog");
  EXPECT_NE(failure["evidence"].get<std::string>().find("SIGABRT after: [Rank 1] Watchdog"),
            std::string::npos);
  EXPECT_EQ(lost["node"], "nid002");
  EXPECT_EQ(exit["lost_agents"][0]["node"], "nid002");
  EXPECT_EQ(exit["code"], 1);
  EXPECT_TRUE(g.TakeEvents().empty());
}

}  // namespace
}  // namespace strun::launcher
