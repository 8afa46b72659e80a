#include "strun/slurm/node_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <slurm/slurm.h>
#include <stdlib.h>

#include <chrono>

namespace strun::slurm {
namespace {

using ::testing::HasSubstr;

TEST(DescribeNodeState, WorkingNodesAreHealthy) {
  for (uint32_t base : {NODE_STATE_IDLE, NODE_STATE_ALLOCATED, NODE_STATE_MIXED}) {
    NodeState s = DescribeNodeState("nid001", base, "");
    EXPECT_TRUE(s.healthy) << s.state;
    EXPECT_EQ(s.reason, "");
  }
  EXPECT_EQ(DescribeNodeState("nid001", NODE_STATE_ALLOCATED, "").state, "ALLOCATED");
  EXPECT_EQ(DescribeNodeState("nid001", NODE_STATE_MIXED, "").state, "MIXED");
}

TEST(DescribeNodeState, FlagsThatLeaveTheJobRunningKeepANodeHealthy) {
  NodeState s = DescribeNodeState(
      "nid002", NODE_STATE_ALLOCATED | NODE_STATE_COMPLETING | NODE_STATE_REBOOT_REQUESTED, "");
  EXPECT_TRUE(s.healthy);
  EXPECT_EQ(s.state, "ALLOCATED+COMPLETING+REBOOT_REQUESTED");
  EXPECT_TRUE(
      DescribeNodeState("n", NODE_STATE_IDLE | NODE_STATE_MAINT | NODE_STATE_RES, "").healthy);
}

TEST(DescribeNodeState, DownDrainFailAndNotRespondingAreUnhealthy) {
  struct Case {
    uint32_t bits;
    const char* state;
  } cases[] = {
      {NODE_STATE_DOWN, "DOWN"},
      {NODE_STATE_DOWN | NODE_STATE_NO_RESPOND, "DOWN+NOT_RESPONDING"},
      {NODE_STATE_IDLE | NODE_STATE_DRAIN, "IDLE+DRAIN"},
      {NODE_STATE_ALLOCATED | NODE_STATE_DRAIN, "ALLOCATED+DRAIN"},
      {NODE_STATE_MIXED | NODE_STATE_DRAIN | NODE_STATE_COMPLETING, "MIXED+COMPLETING+DRAIN"},
      {NODE_STATE_ALLOCATED | NODE_STATE_FAIL, "ALLOCATED+FAIL"},
      {NODE_STATE_ALLOCATED | NODE_STATE_NO_RESPOND, "ALLOCATED+NOT_RESPONDING"},
      {NODE_STATE_IDLE | NODE_STATE_POWERED_DOWN, "IDLE+POWERED_DOWN"},
      {NODE_STATE_IDLE | NODE_STATE_POWERING_UP, "IDLE+POWERING_UP"},
      {NODE_STATE_IDLE | NODE_STATE_REBOOT_ISSUED, "IDLE+REBOOT_ISSUED"},
      {NODE_STATE_FUTURE, "FUTURE"},
      {NODE_STATE_UNKNOWN, "UNKNOWN"},
  };
  for (const Case& c : cases) {
    NodeState s = DescribeNodeState("nid003", c.bits, "");
    EXPECT_FALSE(s.healthy) << c.state;
    EXPECT_EQ(s.state, c.state);
    EXPECT_THAT(s.reason, HasSubstr(c.state))
        << "an unhealthy node without a reason gets one naming its state";
  }
}

TEST(DescribeNodeState, KeepsSlurmsReason) {
  NodeState s = DescribeNodeState("nid004", NODE_STATE_IDLE | NODE_STATE_DRAIN, "bad GPU 3");
  EXPECT_FALSE(s.healthy);
  EXPECT_EQ(s.name, "nid004");
  EXPECT_EQ(s.reason, "bad GPU 3");
}

TEST(QueryNodeStates, NoNamesNeedsNoSlurm) {
  auto r = QueryNodeStates({});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->empty());
}

TEST(QueryNodeStates, MissingConfigurationIsAQuickErrorNamingSlurmConf) {
  setenv("SLURM_CONF", "/nonexistent/strun-test/slurm.conf", 1);
  auto start = std::chrono::steady_clock::now();
  auto r = QueryNodeStates({"nid001"});
  unsetenv("SLURM_CONF");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.error().message, HasSubstr("SLURM_CONF=/nonexistent/strun-test/slurm.conf"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

}  // namespace
}  // namespace strun::slurm
