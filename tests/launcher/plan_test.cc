// From options and a Slurm step to a launch plan: modes, ranks, contradictions.
#include "strun/launcher/plan.h"

#include <gtest/gtest.h>

#include "two_node_step.h"

namespace strun::launcher {
namespace {

using Env = std::map<std::string, std::string>;

LaunchOptions Opts(std::vector<std::string> args, const Env& env = {}) {
  args.push_back("train.py");
  auto r = ParseCommandLine(args, env);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : LaunchOptions{};
}

// 2 nodes x `tasks_per_node` tasks, as Slurm's variables give them; this task is `rank`.
slurm::JobTopology Step(int tasks_per_node, int rank) {
  return TwoNodeStep(tasks_per_node, rank, "slurm");
}

Env StepEnv(int tasks_per_node) {
  return {{"SLURM_STEP_NUM_NODES", "2"},
          {"SLURM_STEP_NUM_TASKS", std::to_string(2 * tasks_per_node)},
          {"SLURM_STEP_TASKS_PER_NODE", std::to_string(tasks_per_node) + "(x2)"},
          {"SLURM_NODEID", "0"}};
}

Result<LaunchPlan> Plan(const LaunchOptions& o, std::optional<slurm::JobTopology> t, Env env = {},
                        std::vector<std::string>* warnings = nullptr) {
  PlanInputs in;
  in.options = &o;
  in.env = std::move(env);
  in.topology = std::move(t);
  in.hostname = "laptop";
  in.node_address = [](const std::string& n) -> Result<std::string> {
    if (n == "nid001") return std::string("10.1.0.1");
    if (n == "nid002") return std::string("10.1.0.2");
    return MakeError("unknown node " + n);
  };
  std::vector<std::string> w;
  return MakeLaunchPlan(in, warnings ? warnings : &w);
}

TEST(Plan, SlurmOneTaskPerNode) {
  LaunchOptions o = Opts({"--nproc-per-node=4"});
  auto p = Plan(o, Step(1, 1), StepEnv(1));
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->mode, LaunchMode::kSlurmPerNode);
  EXPECT_EQ(p->group_rank, 1);
  EXPECT_EQ(p->group_world_size, 2);
  EXPECT_EQ(p->local_world_size, 4);
  EXPECT_EQ(p->world_size, 8);
  EXPECT_EQ(p->num_workers, 4);
  EXPECT_EQ(p->first_rank, 4);
  EXPECT_EQ(p->first_local_rank, 0);
  EXPECT_EQ(p->agent_index, 1);
  EXPECT_EQ(p->num_agents, 2);
  EXPECT_EQ(p->master_addr, "10.1.0.1");  // the real address of the first node, not its name
  EXPECT_FALSE(p->master_port.has_value());
  EXPECT_EQ(p->run_id, "77");
  EXPECT_EQ(p->node_name, "nid002");
}

TEST(Plan, SlurmOneTaskPerGpu) {
  LaunchOptions o = Opts({});
  auto p = Plan(o, Step(4, 6), StepEnv(4));
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->mode, LaunchMode::kSlurmPerTask);
  EXPECT_EQ(p->num_workers, 1);
  EXPECT_EQ(p->first_rank, 6);
  EXPECT_EQ(p->first_local_rank, 2);
  EXPECT_EQ(p->local_world_size, 4);
  EXPECT_EQ(p->world_size, 8);
  EXPECT_EQ(p->group_rank, 1);
  EXPECT_EQ(p->group_world_size, 2);
  EXPECT_EQ(p->agent_index, 6);
  EXPECT_EQ(p->num_agents, 8);
  // --nproc-per-node equal to the tasks on the node is consistent.
  EXPECT_TRUE(Plan(Opts({"--nproc-per-node=4"}), Step(4, 6), StepEnv(4)).ok());
}

TEST(Plan, SlurmContradictionsAreClearErrors) {
  auto e = Plan(Opts({"--nproc-per-node=2"}), Step(4, 0), StepEnv(4));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("SLURM_STEP_TASKS_PER_NODE=4(x2)"), std::string::npos)
      << e.error().message;
  e = Plan(Opts({"--nnodes=3"}), Step(1, 0), StepEnv(1));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("SLURM_STEP_NUM_NODES=2"), std::string::npos)
      << e.error().message;
  e = Plan(Opts({"--node-rank=0"}), Step(1, 1), StepEnv(1));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("SLURM_NODEID=1"), std::string::npos) << e.error().message;
  e = Plan(Opts({"--standalone"}), Step(1, 0), StepEnv(1));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("--standalone"), std::string::npos);
  e = Plan(Opts({"--master-addr=nid002"}), Step(1, 0), StepEnv(1));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("global rank 0 runs on nid001"), std::string::npos)
      << e.error().message;
  // Consistent explicit flags (the tutorial's) are fine; NNODES as a range too.
  EXPECT_TRUE(
      Plan(Opts({"--nnodes=2", "--node-rank=1", "--nproc-per-node=4"}), Step(1, 1), StepEnv(1))
          .ok());
  EXPECT_TRUE(Plan(Opts({"--nnodes=1:4"}), Step(1, 1), StepEnv(1)).ok());
}

TEST(Plan, SlurmMasterAddressChoices) {
  auto p = Plan(Opts({"--master-addr=nid001", "--master-port=29500"}), Step(1, 1), StepEnv(1));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->master_addr, "10.1.0.1");
  EXPECT_EQ(*p->master_port, 29500);
  p = Plan(Opts({"--master-addr=192.168.7.7"}), Step(1, 1), StepEnv(1));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->master_addr, "192.168.7.7");
  std::vector<std::string> warnings;
  p = Plan(Opts({"--rdzv-backend=c10d", "--rdzv-endpoint=x:1"}), Step(1, 0), StepEnv(1), &warnings);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(warnings.size(), 1u);
  p = Plan(Opts({"--rdzv-id=abc"}), Step(1, 0), StepEnv(1));
  EXPECT_EQ(p->run_id, "abc");
}

TEST(Plan, Standalone) {
  auto p = Plan(Opts({"--standalone", "--nproc-per-node=3"}), std::nullopt);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->mode, LaunchMode::kStandalone);
  EXPECT_EQ(p->num_agents, 1);
  EXPECT_EQ(p->world_size, 3);
  EXPECT_EQ(p->master_addr, "127.0.0.1");
  EXPECT_EQ(p->run_id.size(), 36u);  // a uuid4, as torchrun
  auto q = Plan(Opts({"--standalone", "--nproc-per-node=3"}), std::nullopt);
  EXPECT_NE(p->run_id, q->run_id);
  EXPECT_FALSE(Plan(Opts({"--standalone", "--nnodes=2"}), std::nullopt).ok());
}

TEST(Plan, StaticMultiNode) {
  auto p =
      Plan(Opts({"--nnodes=3", "--node-rank=2", "--nproc-per-node=2", "--master-addr=10.9.9.9"}),
           std::nullopt);
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->mode, LaunchMode::kStatic);
  EXPECT_EQ(p->first_rank, 4);
  EXPECT_EQ(p->world_size, 6);
  EXPECT_EQ(p->group_rank, 2);
  EXPECT_EQ(p->agent_index, 2);
  EXPECT_EQ(p->num_agents, 3);
  EXPECT_EQ(p->master_addr, "10.9.9.9");
  EXPECT_EQ(p->run_id, "none");
  EXPECT_FALSE(Plan(Opts({"--nnodes=2", "--node-rank=2"}), std::nullopt).ok());
  auto e = Plan(Opts({"--nnodes=1:2"}), std::nullopt);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("elastic"), std::string::npos);
  e = Plan(Opts({"--nnodes=2", "--rdzv-backend=c10d", "--rdzv-endpoint=h:5"}), std::nullopt);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("--node-rank"), std::string::npos);
  p = Plan(
      Opts({"--nnodes=2", "--node-rank=1", "--rdzv-backend=c10d", "--rdzv-endpoint=head:5000"}),
      std::nullopt);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->master_addr, "head");
  EXPECT_EQ(*p->coordination_port, 5000);
  p = Plan(Opts({"--nnodes=2", "--node-rank=1", "--rdzv-backend=c10d", "--rdzv-endpoint=[::1]"}),
           std::nullopt);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->master_addr, "::1");
  EXPECT_EQ(*p->coordination_port, 29400);
  p = Plan(Opts({"--rdzv-conf=join_timeout=12"}), std::nullopt);
  EXPECT_DOUBLE_EQ(p->join_timeout_s, 12);
  EXPECT_FALSE(Plan(Opts({"--rdzv-conf=join_timeout=x"}), std::nullopt).ok());
}

TEST(Plan, NprocPerNodeValues) {
  EXPECT_EQ(*ResolveNprocPerNode("3", {}, std::nullopt), 3);
  EXPECT_FALSE(ResolveNprocPerNode("0", {}, std::nullopt).ok());
  EXPECT_GE(*ResolveNprocPerNode("cpu", {}, std::nullopt), 1);
  EXPECT_EQ(*ResolveNprocPerNode("gpu", {{"CUDA_VISIBLE_DEVICES", "0,1,3"}}, std::nullopt), 3);
  EXPECT_EQ(*ResolveNprocPerNode("auto", {{"CUDA_VISIBLE_DEVICES", "2"}}, std::nullopt), 1);
  EXPECT_FALSE(ResolveNprocPerNode("gpu", {{"CUDA_VISIBLE_DEVICES", ""}}, std::nullopt).ok());
  slurm::JobTopology t = Step(1, 0);
  t.gpus = {"0", "1", "2", "3"};
  EXPECT_EQ(*ResolveNprocPerNode("gpu", {}, t), 4);
  auto e = ResolveNprocPerNode("xpu", {}, std::nullopt);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("unsupported"), std::string::npos);
}

// A typo must not become 10^8 workers (std::bad_alloc): the bound is named in the error.
TEST(Plan, NprocPerNodeHasAnUpperBound) {
  EXPECT_EQ(*ResolveNprocPerNode(std::to_string(kMaxNprocPerNode), {}, std::nullopt),
            kMaxNprocPerNode);
  for (const std::string& v : {std::to_string(kMaxNprocPerNode + 1), std::string("99999999"),
                               std::string("99999999999999999999")}) {
    auto e = ResolveNprocPerNode(v, {}, std::nullopt);
    ASSERT_FALSE(e.ok()) << v;
    EXPECT_NE(e.error().message.find("--nproc-per-node=" + v + ": more than 1024 workers"),
              std::string::npos)
        << e.error().message;
  }
  bool usage = false;
  PlanInputs in;
  LaunchOptions o = Opts({"--standalone", "--nproc-per-node=99999999"});
  in.options = &o;
  std::vector<std::string> w;
  EXPECT_FALSE(MakeLaunchPlan(in, &w, &usage).ok());
  EXPECT_TRUE(usage);
}

// Flag errors are usage errors (strun exits 2); an unresolvable node is not.
TEST(Plan, UsageErrorsAreMarked) {
  PlanInputs in;
  std::vector<std::string> w;
  bool usage = false;
  LaunchOptions o = Opts({"--standalone", "--nnodes=2"});
  in.options = &o;
  EXPECT_FALSE(MakeLaunchPlan(in, &w, &usage).ok());
  EXPECT_TRUE(usage);
  usage = false;
  LaunchOptions ok = Opts({"--nproc-per-node=1"});
  in.options = &ok;
  in.topology = Step(1, 0);
  in.env = StepEnv(1);
  in.node_address = [](const std::string& n) -> Result<std::string> {
    return MakeError("unknown node " + n);
  };
  auto p = MakeLaunchPlan(in, &w, &usage);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("cannot find an address for nid001"), std::string::npos)
      << p.error().message;
  EXPECT_FALSE(usage);
}

}  // namespace
}  // namespace strun::launcher
