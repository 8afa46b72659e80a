#include "strun/slurm/topology.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace strun::slurm {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// What srun -N4 -n8 gives task 5 (seen on the local test cluster).
Environment StepEnv() {
  return Environment({
      {"SLURM_JOB_ID", "42"},
      {"SLURM_STEP_ID", "0"},
      {"SLURM_PROCID", "5"},
      {"SLURM_LOCALID", "1"},
      {"SLURM_NODEID", "2"},
      {"SLURM_NTASKS", "8"},
      {"SLURM_NNODES", "4"},
      {"SLURM_JOB_NODELIST", "nid[001-004]"},
      {"SLURM_STEP_NODELIST", "nid[001-004]"},
      {"SLURM_TASKS_PER_NODE", "2(x4)"},
      {"SLURM_STEP_TASKS_PER_NODE", "2(x4)"},
      {"SLURM_STEP_NUM_NODES", "4"},
      {"SLURM_STEP_NUM_TASKS", "8"},
      {"SLURMD_NODENAME", "nid003"},
  });
}

std::string ErrorOf(const Environment& env) {
  auto t = TopologyFromSlurmEnv(env);
  EXPECT_FALSE(t.ok());
  return t.ok() ? "" : t.error().message;
}

TEST(ExpandTasksPerNode, Forms) {
  EXPECT_THAT(*ExpandTasksPerNode("4(x2),3", "V"), ElementsAre(4, 4, 3));
  EXPECT_THAT(*ExpandTasksPerNode("2(x4)", "V"), ElementsAre(2, 2, 2, 2));
  EXPECT_THAT(*ExpandTasksPerNode("1", "V"), ElementsAre(1));
  EXPECT_THAT(*ExpandTasksPerNode("3,1(x1),2(x3)", "V"), ElementsAre(3, 1, 2, 2, 2));
}

TEST(ExpandTasksPerNode, MalformedNamesTheVariable) {
  for (const char* bad : {"", "4(x2", "4x2", "(x2)", "4(2)", "a", "4,", ",4", "0", "4(x0)", "-1",
                          "4(x-1)", "4(x)", "4(x2)5", "99999999999"}) {
    auto r = ExpandTasksPerNode(bad, "SLURM_TASKS_PER_NODE");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(r.error().message, HasSubstr(std::string("SLURM_TASKS_PER_NODE=") + bad)) << bad;
  }
}

TEST(TopologyFromSlurmEnv, ReadsAStepTask) {
  auto t = TopologyFromSlurmEnv(StepEnv());
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->source, "slurm");
  EXPECT_EQ(t->job_id, "42");
  EXPECT_EQ(t->step_id, "0");
  EXPECT_EQ(t->rank, 5);
  EXPECT_EQ(t->local_rank, 1);
  EXPECT_EQ(t->world_size, 8);
  EXPECT_EQ(t->node_rank, 2);
  EXPECT_EQ(t->num_nodes, 4);
  EXPECT_THAT(t->nodes, ElementsAre("nid001", "nid002", "nid003", "nid004"));
  EXPECT_THAT(t->tasks_per_node, ElementsAre(2, 2, 2, 2));
  EXPECT_EQ(t->local_world_size, 2);
  EXPECT_EQ(t->node_name, "nid003");
  EXPECT_EQ(t->gpus_on_node, 0);
  EXPECT_TRUE(t->gpus.empty());
  EXPECT_EQ(t->cpus_per_task, 0);
  EXPECT_EQ(t->restart_count, 0);
  EXPECT_EQ(t->FirstRankOfNode(0), 0);
  EXPECT_EQ(t->FirstRankOfNode(2), 4);
  EXPECT_EQ(t->FirstRankOfNode(4), 8);
}

TEST(TopologyFromSlurmEnv, OptionalValues) {
  Environment env = StepEnv();
  env.Set("SLURM_GPUS_ON_NODE", "4");
  env.Set("SLURM_JOB_GPUS", "0,1,2,3");
  env.Set("SLURM_CPUS_PER_TASK", "16");
  env.Set("SLURM_RESTART_COUNT", "3");
  auto t = TopologyFromSlurmEnv(env);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->gpus_on_node, 4);
  EXPECT_THAT(t->gpus, ElementsAre("0", "1", "2", "3"));
  EXPECT_EQ(t->cpus_per_task, 16);
  EXPECT_EQ(t->restart_count, 3);
  env.Set("SLURM_STEP_GPUS", "2,3");  // the step's GPUs win over the job's
  EXPECT_THAT(TopologyFromSlurmEnv(env)->gpus, ElementsAre("2", "3"));
}

TEST(TopologyFromSlurmEnv, StepVariablesWinOverJobVariables) {
  // A 2-node srun inside a 4-node allocation with uneven tasks.
  Environment env({
      {"SLURM_JOB_ID", "7"},
      {"SLURM_PROCID", "4"},
      {"SLURM_LOCALID", "0"},
      {"SLURM_NODEID", "1"},
      {"SLURM_NTASKS", "16"},
      {"SLURM_NNODES", "4"},
      {"SLURM_JOB_NODELIST", "gpu[10-13]"},
      {"SLURM_TASKS_PER_NODE", "4(x4)"},
      {"SLURM_STEP_NODELIST", "gpu[12-13]"},
      {"SLURM_STEP_TASKS_PER_NODE", "4,3"},
      {"SLURM_STEP_NUM_NODES", "2"},
      {"SLURM_STEP_NUM_TASKS", "7"},
  });
  auto t = TopologyFromSlurmEnv(env);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_THAT(t->nodes, ElementsAre("gpu12", "gpu13"));
  EXPECT_THAT(t->tasks_per_node, ElementsAre(4, 3));
  EXPECT_EQ(t->world_size, 7);
  EXPECT_EQ(t->num_nodes, 2);
  EXPECT_EQ(t->local_world_size, 3);
  EXPECT_EQ(t->node_name, "gpu13");
  EXPECT_FALSE(t->step_id.has_value());
}

TEST(TopologyFromSlurmEnv, JobVariablesAloneAreEnough) {
  Environment env({
      {"SLURM_JOB_ID", "7"},
      {"SLURM_PROCID", "2"},
      {"SLURM_LOCALID", "0"},
      {"SLURM_NODEID", "1"},
      {"SLURM_JOB_NODELIST", "a,b"},
      {"SLURM_TASKS_PER_NODE", "2,1"},
  });
  auto t = TopologyFromSlurmEnv(env);
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->world_size, 3);  // from the tasks per node when SLURM_NTASKS is unset
  EXPECT_EQ(t->num_nodes, 2);
  EXPECT_EQ(t->node_name, "b");
  EXPECT_EQ(t->local_world_size, 1);
}

TEST(TopologyFromSlurmEnv, MissingVariablesAreNamed) {
  for (const char* name : {"SLURM_JOB_ID", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID"}) {
    Environment env = StepEnv();
    env.Unset(name);
    EXPECT_THAT(ErrorOf(env), AllOf(HasSubstr(name), HasSubstr("not set"))) << name;
  }
  Environment env = StepEnv();
  env.Unset("SLURM_STEP_NODELIST");
  env.Unset("SLURM_JOB_NODELIST");
  EXPECT_THAT(ErrorOf(env), HasSubstr("SLURM_STEP_NODELIST"));
  env = StepEnv();
  env.Unset("SLURM_STEP_TASKS_PER_NODE");
  env.Unset("SLURM_TASKS_PER_NODE");
  EXPECT_THAT(ErrorOf(env), HasSubstr("SLURM_STEP_TASKS_PER_NODE"));
}

TEST(TopologyFromSlurmEnv, InconsistentValuesNameTheVariable) {
  struct Case {
    const char* name;
    const char* value;
    const char* expect;
  };
  for (const Case& c : std::vector<Case>{
           {"SLURM_NODEID", "5",
            "SLURM_NODEID=5 but the step has 4 nodes (SLURM_STEP_NODELIST=nid[001-004])"},
           {"SLURM_PROCID", "8", "SLURM_PROCID=8 but the step has 8 tasks"},
           {"SLURM_LOCALID", "2", "SLURM_LOCALID=2 but node 2 runs 2 tasks"},
           {"SLURM_STEP_NUM_TASKS", "9",
            "SLURM_STEP_NUM_TASKS=9 but SLURM_STEP_TASKS_PER_NODE=2(x4) adds up to 8"},
           {"SLURM_STEP_NUM_NODES", "3",
            "SLURM_STEP_NUM_NODES=3 but SLURM_STEP_NODELIST=nid[001-004] lists 4"},
           {"SLURM_STEP_TASKS_PER_NODE", "2(x3)",
            "SLURM_STEP_TASKS_PER_NODE=2(x3) describes 3 nodes"},
           {"SLURM_STEP_NODELIST", "nid[004-001]", "SLURM_STEP_NODELIST: invalid host list"},
           {"SLURM_STEP_NODELIST", ",", "SLURM_STEP_NODELIST=, names no node"},
           {"SLURMD_NODENAME", "nid001", "SLURMD_NODENAME=nid001 but SLURM_NODEID=2 is nid003"},
           {"SLURM_PROCID", "x", "SLURM_PROCID=x is not a whole number"},
           {"SLURM_PROCID", "-1", "SLURM_PROCID=-1 is out of range"},
           {"SLURM_LOCALID", "", "SLURM_LOCALID= is not a whole number"},
           {"SLURM_NODEID", "1.5", "SLURM_NODEID=1.5 is not a whole number"},
           {"SLURM_GPUS_ON_NODE", "four", "SLURM_GPUS_ON_NODE=four"},
           {"SLURM_CPUS_PER_TASK", "0", "SLURM_CPUS_PER_TASK=0 is out of range"},
           {"SLURM_RESTART_COUNT", "-2", "SLURM_RESTART_COUNT=-2"},
           {"SLURM_JOB_GPUS", "0,,1", "SLURM_JOB_GPUS=0,,1 has an empty entry"},
           {"SLURM_JOB_ID", "", "SLURM_JOB_ID is empty"},
       }) {
    Environment env = StepEnv();
    env.Set(c.name, c.value);
    EXPECT_THAT(ErrorOf(env), HasSubstr(c.expect)) << c.name << "=" << c.value;
  }
}

// Each count fits an int but the sum does not: refused, not a negative task count.
TEST(TopologyFromSlurmEnv, TaskCountOverflowNamesTheVariable) {
  Environment env = StepEnv();
  env.Set("SLURM_STEP_TASKS_PER_NODE", "2147483647,2(x3)");
  env.Unset("SLURM_STEP_NUM_TASKS");
  env.Unset("SLURM_NTASKS");
  const std::string error = ErrorOf(env);
  EXPECT_THAT(error,
              HasSubstr("SLURM_STEP_TASKS_PER_NODE=2147483647,2(x3) adds up to 2147483653 tasks"));
  EXPECT_THAT(error, Not(HasSubstr("-2147483")));
}

TEST(InSlurmStep, NeedsProcidAndJobId) {
  EXPECT_TRUE(InSlurmStep(StepEnv()));
  EXPECT_FALSE(InSlurmStep(Environment()));
  EXPECT_FALSE(InSlurmStep(Environment(std::map<std::string, std::string>{{"SLURM_JOB_ID", "1"}})));
  EXPECT_TRUE(InSlurmStep(Environment({{"SLURM_JOBID", "1"}, {"SLURM_PROCID", "0"}})));
}

}  // namespace
}  // namespace strun::slurm
