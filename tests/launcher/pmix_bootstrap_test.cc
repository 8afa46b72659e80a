// The PMIx bootstrap: cross-checking PMIx against SLURM_*, and rank 0 handing every task the master
// address and a fresh coordination secret (with an in-memory exchange standing in for PMIx; the
// real one runs in pmix_cluster_test.sh).
#include "strun/launcher/pmix_bootstrap.h"

#include <gtest/gtest.h>

#include <map>

#include "strun/launcher/coordination.h"
#include "two_node_step.h"

namespace strun::launcher {
namespace {

using Env = std::map<std::string, std::string>;

// 2 nodes x `tasks_per_node` tasks; this task is `rank` (the tests set no source).
slurm::JobTopology Step(int tasks_per_node, int rank) {
  return TwoNodeStep(tasks_per_node, rank, "");
}

// One shared store; Fence does nothing because the tests run the ranks one after the other
// (publisher first), which is what a fence guarantees.
struct Store {
  std::map<std::pair<int, std::string>, std::string> data;
  int fences = 0;
};
class FakeExchange : public KeyValueExchange {
 public:
  FakeExchange(Store* s, int rank) : s_(s), rank_(rank) {}
  Status Put(const std::string& key, const std::string& value) override {
    s_->data[{rank_, key}] = value;
    return {};
  }
  Status Fence() override {
    ++s_->fences;
    return {};
  }
  Result<std::string> Get(int rank, const std::string& key) override {
    auto it = s_->data.find({rank, key});
    if (it == s_->data.end()) return MakeError("not found: " + key);
    return it->second;
  }

 private:
  Store* s_;
  int rank_;
};

Result<LaunchPlan> PlanFor(int tasks_per_node, int rank, const std::string& addr) {
  static LaunchOptions options = *ParseCommandLine({"train.py"}, {});
  PlanInputs in;
  in.options = &options;
  in.env = {{"SLURM_STEP_NUM_NODES", "2"},
            {"SLURM_STEP_NUM_TASKS", std::to_string(2 * tasks_per_node)}};
  in.topology = Step(tasks_per_node, rank);
  in.node_address = [addr](const std::string&) -> Result<std::string> { return addr; };
  in.master_addr_from_rank0 = true;
  std::vector<std::string> warnings;
  return MakeLaunchPlan(in, &warnings);
}

TEST(PmixCrossCheck, AgreeingTopologiesPass) {
  EXPECT_TRUE(CheckPmixAgainstSlurm(Step(2, 3), Step(2, 3)).ok());
}

TEST(PmixCrossCheck, EachContradictionNamesTheVariable) {
  auto expect = [](slurm::JobTopology s, const std::string& var) {
    auto st = CheckPmixAgainstSlurm(Step(2, 1), s);
    ASSERT_FALSE(st.ok()) << var;
    EXPECT_NE(st.error().message.find(var), std::string::npos) << st.error().message;
    EXPECT_NE(st.error().message.find("PMIx"), std::string::npos) << st.error().message;
  };
  expect(Step(2, 2), "SLURM_PROCID");
  auto t = Step(2, 1);
  t.world_size = 5;
  expect(t, "SLURM_NTASKS");
  t = Step(2, 1);
  t.local_rank = 0;
  expect(t, "SLURM_LOCALID");
  t = Step(2, 1);
  t.node_rank = 1;
  expect(t, "SLURM_NODEID");
  t = Step(2, 1);
  t.nodes = {"nid001", "nid003"};
  expect(t, "SLURM_STEP_NODELIST");
  t = Step(2, 1);
  t.tasks_per_node = {3, 1};
  expect(t, "SLURM_STEP_TASKS_PER_NODE");
}

TEST(PmixBootstrap, OnlyRankZeroResolvesTheMasterAddress) {
  auto p0 = PlanFor(2, 0, "10.0.0.1");
  auto p3 = PlanFor(2, 3, "10.9.9.9");
  ASSERT_TRUE(p0.ok() && p3.ok());
  EXPECT_EQ(p0->master_addr, "10.0.0.1");
  EXPECT_EQ(p3->master_addr, "");
}

TEST(PmixBootstrap, EveryTaskGetsRankZerosAddressAndOneFreshSecret) {
  for (int tpn : {1, 2}) {  // mode (a): one agent per node; mode (b): one per task
    Store store;
    std::vector<Result<LaunchPlan>> plans;
    for (int r = 0; r < 2 * tpn; ++r)
      plans.push_back(PlanFor(tpn, r, r == 0 ? "10.0.0.1" : "10.9.9.9"));
    for (int r = 0; r < 2 * tpn; ++r) {
      FakeExchange x(&store, r);
      auto st = PmixBootstrap(x, r, &plans[size_t(r)]);
      ASSERT_TRUE(st.ok()) << st.error().message;
    }
    EXPECT_EQ(store.fences, 2 * tpn);
    const std::string secret = plans[0]->job_secret;
    EXPECT_EQ(secret.size(), 64u);  // 32 random bytes, hex
    for (auto& p : plans) {
      EXPECT_EQ(p->master_addr, "10.0.0.1");
      EXPECT_EQ(p->job_secret, secret);
    }
    // The agreed secret makes the coordination key, with no secret file (no usable HOME) anywhere;
    // an explicit STRUN_JOB_SECRET (strund's) still wins.
    auto k0 = CoordinationKey(*plans[0], {{"HOME", "/nonexistent-home-0"}});
    auto k1 = CoordinationKey(*plans[1], {{"HOME", "/nonexistent-home-1"}});
    auto kx = CoordinationKey(*plans[1], {{"STRUN_JOB_SECRET", "explicit"}});
    ASSERT_TRUE(k0.ok() && k1.ok() && kx.ok());
    EXPECT_EQ(*k0, *k1);
    EXPECT_NE(*kx, *k1);
    // A second job gets another secret.
    Store other;
    auto again = PlanFor(tpn, 0, "10.0.0.1");
    FakeExchange x(&other, 0);
    ASSERT_TRUE(PmixBootstrap(x, 0, &again).ok());
    EXPECT_NE(again->job_secret, secret);
  }
}

TEST(PmixBootstrap, RankZerosErrorReachesEveryTaskAfterTheFence) {
  Store store;
  Result<LaunchPlan> p0 = MakeError("cannot find an address for nid001");
  FakeExchange x0(&store, 0);
  auto st0 = PmixBootstrap(x0, 0, &p0);
  ASSERT_FALSE(st0.ok());
  EXPECT_EQ(st0.error().message, "cannot find an address for nid001");
  auto p1 = PlanFor(2, 1, "10.9.9.9");
  FakeExchange x1(&store, 1);
  auto st1 = PmixBootstrap(x1, 1, &p1);
  ASSERT_FALSE(st1.ok());
  EXPECT_NE(st1.error().message.find("rank 0 failed: cannot find an address for nid001"),
            std::string::npos);
  EXPECT_EQ(store.fences, 2);  // both took part
}

TEST(PmixBootstrap, ATasksOwnErrorStillTakesPartInTheFence) {
  Store store;
  auto p0 = PlanFor(2, 0, "10.0.0.1");
  FakeExchange x0(&store, 0);
  ASSERT_TRUE(PmixBootstrap(x0, 0, &p0).ok());
  Result<LaunchPlan> p2 = MakeError("PMIx and Slurm disagree");
  FakeExchange x2(&store, 2);
  auto st = PmixBootstrap(x2, 2, &p2);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "PMIx and Slurm disagree");
  EXPECT_EQ(store.fences, 2);
}

}  // namespace
}  // namespace strun::launcher
