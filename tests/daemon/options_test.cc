#include "strun/daemon/options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "strun/daemon/supervisor.h"

namespace strun::daemon {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string ErrorOf(const std::vector<std::string>& args) {
  auto r = ParseDaemonCommandLine(args);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.error().message;
}

TEST(DaemonOptions, DefaultsAndTheCommandAfterTheSeparator) {
  auto r = ParseDaemonCommandLine({"--", "srun", "strun", "train.py"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE(r->nodes.has_value());
  EXPECT_EQ(r->max_restarts, 3);
  EXPECT_EQ(r->max_relaunches, 3);
  EXPECT_EQ(r->max_requeues, 3);
  EXPECT_EQ(r->node_check_interval_s, 5);
  EXPECT_EQ(r->event_log, "");
  EXPECT_THAT(r->command, ElementsAre("srun", "strun", "train.py"));
}

TEST(DaemonOptions, ReadsEveryOption) {
  auto r = ParseDaemonCommandLine({"--nodes",
                                   "4",
                                   "--max-restarts",
                                   "0",
                                   "--max-relaunches=5",
                                   "--max-requeues",
                                   "1",
                                   "--event-log",
                                   "/x/e.jsonl",
                                   "--node-check-interval",
                                   "0.5",
                                   "--backoff-initial",
                                   "2",
                                   "--backoff-max",
                                   "8",
                                   "--max-same-step-failures",
                                   "3",
                                   "--join-timeout",
                                   "30",
                                   "--stop-timeout",
                                   "4",
                                   "--preempt-timeout",
                                   "60",
                                   "--",
                                   "srun",
                                   "strun",
                                   "--",
                                   "x"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->nodes, 4);
  EXPECT_EQ(r->max_restarts, 0);
  EXPECT_EQ(r->max_relaunches, 5);
  EXPECT_EQ(r->max_requeues, 1);
  EXPECT_EQ(r->event_log, "/x/e.jsonl");
  EXPECT_EQ(r->node_check_interval_s, 0.5);
  EXPECT_EQ(r->backoff_initial_s, 2);
  EXPECT_EQ(r->backoff_max_s, 8);
  EXPECT_EQ(r->max_same_step_failures, 3);
  EXPECT_EQ(r->join_timeout_s, 30);
  EXPECT_EQ(r->stop_timeout_s, 4);
  EXPECT_EQ(r->preempt_timeout_s, 60);
  EXPECT_THAT(r->command, ElementsAre("srun", "strun", "--", "x")) << "only the first -- separates";
}

TEST(DaemonOptions, NodeCountMayBeARangeOfOne) {
  auto r = ParseDaemonCommandLine({"--nnodes", "2:2", "--", "srun", "strun", "x"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->nodes, 2);
}

TEST(DaemonOptions, FewerNodesNeedTheTrainingLayout) {
  auto r = ParseDaemonCommandLine({"--nodes", "2:4", "--procs-per-node", "4", "--model-parallel",
                                   "2", "--micro-batches", "16", "--", "srun", "strun", "x"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->nodes, 4);
  EXPECT_EQ(r->min_nodes, 2);
  EXPECT_EQ(r->procs_per_node, 4);
  EXPECT_EQ(r->model_parallel, 2);
  EXPECT_EQ(r->micro_batches, 16);
  std::string e = ErrorOf({"--nodes", "2:4", "--", "srun", "strun", "x"});
  EXPECT_THAT(e, HasSubstr("--nodes 2:4"));
  EXPECT_THAT(e, HasSubstr("give --procs-per-node and --micro-batches ("));
  // 4 nodes x 4 processes / model parallel 2 = dp 8, which 12 micro-batches do not fill.
  e = ErrorOf({"--nodes", "2:4", "--procs-per-node", "4", "--model-parallel", "2",
               "--micro-batches", "12", "--", "srun", "strun", "x"});
  EXPECT_THAT(e, HasSubstr("12 micro-batches per step (--micro-batches) do not split over 8"));
  EXPECT_THAT(e, HasSubstr("at 4 nodes"));
  // The layout options alone would do nothing.
  EXPECT_THAT(ErrorOf({"--nodes", "2", "--micro-batches", "4", "--", "srun", "strun", "x"}),
              HasSubstr("give them with --nodes MIN:MAX"));
  EXPECT_THAT(ErrorOf({"--nodes", "3:2", "--", "srun", "strun", "x"}),
              HasSubstr("1 <= MIN <= MAX"));
}

TEST(DaemonOptions, ErrorsNameTheOptionOrArgument) {
  EXPECT_THAT(ErrorOf({"--nodes", "zero", "--", "srun", "strun", "x"}), HasSubstr("--nodes zero"));
  EXPECT_THAT(ErrorOf({"--nodes", "0", "--", "srun", "strun", "x"}), HasSubstr("--nodes 0"));
  EXPECT_THAT(ErrorOf({"--max-restarts", "-1", "--", "srun", "strun", "x"}),
              HasSubstr("max-restarts"));
  EXPECT_THAT(ErrorOf({"--node-check-interval", "0", "--", "srun", "strun", "x"}),
              HasSubstr("node-check-interval"));
  EXPECT_THAT(ErrorOf({"--frobnicate", "--", "srun", "strun", "x"}), HasSubstr("'--frobnicate'"));
  EXPECT_THAT(
      ErrorOf({"--backoff-initial", "10", "--backoff-max", "5", "--", "srun", "strun", "x"}),
      HasSubstr("--backoff-max"));
  EXPECT_THAT(ErrorOf({"srun", "strun", "x"}), HasSubstr("`--`"));
  EXPECT_THAT(ErrorOf({"--"}), HasSubstr("nothing after `--`"));
  EXPECT_THAT(ErrorOf({"--", "bash", "-c", "srun strun x"}), HasSubstr("'bash'"));
  EXPECT_THAT(ErrorOf({"--", "srun", "python", "train.py"}), HasSubstr("runs no strun"));
}

TEST(DaemonOptions, Help) {
  auto r = ParseDaemonCommandLine({"--help"});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->help);
  EXPECT_THAT(DaemonUsage(), HasSubstr("--max-requeues"));
}

// The supervisor checks its environment before it touches Slurm or starts anything.
int Supervise(std::map<std::string, std::string> env,
              std::vector<std::string> args = {"--", "srun", "strun", "x"}) {
  auto o = ParseDaemonCommandLine(args);
  EXPECT_TRUE(o.ok());
  return RunSupervisor(*o, env);
}

TEST(Supervisor, NeedsAnAllocation) {
  testing::internal::CaptureStderr();
  EXPECT_EQ(Supervise({}), kExitUsage);
  EXPECT_THAT(testing::internal::GetCapturedStderr(), HasSubstr("SLURM_JOB_ID is not set"));
  testing::internal::CaptureStderr();
  EXPECT_EQ(Supervise({{"SLURM_JOB_ID", "12"}}), kExitUsage);
  EXPECT_THAT(testing::internal::GetCapturedStderr(), HasSubstr("SLURM_JOB_NODELIST is not set"));
  testing::internal::CaptureStderr();
  EXPECT_EQ(Supervise({{"SLURM_JOB_ID", "12x"}, {"SLURM_JOB_NODELIST", "nid001"}}), kExitUsage);
  EXPECT_THAT(testing::internal::GetCapturedStderr(), HasSubstr("SLURM_JOB_ID=12x"));
}

TEST(Supervisor, ChecksItsVariablesAndTheNodeCount) {
  const std::map<std::string, std::string> job = {{"SLURM_JOB_ID", "12"},
                                                  {"SLURM_JOB_NODELIST", "nid[001-002]"}};
  auto with = [&](std::string k, std::string v) {
    auto env = job;
    env[k] = v;
    return env;
  };
  testing::internal::CaptureStderr();
  EXPECT_EQ(Supervise(with("SLURM_JOB_NODELIST", "nid[2-1]")), kExitUsage);
  EXPECT_THAT(testing::internal::GetCapturedStderr(), HasSubstr("SLURM_JOB_NODELIST=nid[2-1]"));
  testing::internal::CaptureStderr();
  EXPECT_EQ(Supervise(with("SLURM_RESTART_COUNT", "x")), kExitUsage);
  EXPECT_THAT(testing::internal::GetCapturedStderr(), HasSubstr("SLURM_RESTART_COUNT=x"));
  testing::internal::CaptureStderr();
  EXPECT_EQ(Supervise(with("STRUN_COORD_PORT", "70000")), kExitUsage);
  EXPECT_THAT(testing::internal::GetCapturedStderr(), HasSubstr("STRUN_COORD_PORT=70000"));
  testing::internal::CaptureStderr();
  EXPECT_EQ(Supervise(job, {"--nodes", "3", "--", "srun", "strun", "x"}), kExitUsage);
  EXPECT_THAT(testing::internal::GetCapturedStderr(),
              HasSubstr("--nodes 3: the allocation has only 2 nodes"));
  testing::internal::CaptureStderr();
  EXPECT_EQ(Supervise(job, {"--", "srun", "-N", "4", "strun", "x"}), kExitUsage);
  EXPECT_THAT(testing::internal::GetCapturedStderr(), HasSubstr("the allocation has only 2 nodes"));
}

}  // namespace
}  // namespace strun::daemon
