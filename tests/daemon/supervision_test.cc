// strund's decisions (supervision.h), each alone: environment, watch, launch end, next step,
// requeue.
#include "strun/daemon/supervision.h"

#include <gtest/gtest.h>
#include <signal.h>

namespace strun::daemon {
namespace {

DaemonOptions Options() {
  DaemonOptions o;
  o.command = {"srun", "strun", "train.py"};
  return o;
}

TEST(ReadJobSetup, ReadsTheAllocation) {
  auto s = ReadJobSetup(Options(), {{"SLURM_JOB_ID", "42"},
                                    {"SLURM_JOB_NODELIST", "nid[001-003]"},
                                    {"SLURM_JOB_NUM_NODES", "2"},
                                    {"SLURM_RESTART_COUNT", "1"},
                                    {"SLURM_NTASKS_PER_NODE", "4"},
                                    {"STRUN_COORD_PORT", "23456"}});
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(s->job_id_num, 42u);
  EXPECT_EQ(s->allocation, (std::vector<std::string>{"nid001", "nid002", "nid003"}));
  EXPECT_EQ(s->nodes_needed, 2);
  EXPECT_EQ(s->restart_count, 1);
  EXPECT_EQ(s->tasks_per_node, 4);
  EXPECT_EQ(s->coord_port, 23456);
}

TEST(ReadJobSetup, ErrorsNameTheVariable) {
  EXPECT_NE(ReadJobSetup(Options(), {}).error().message.find("SLURM_JOB_ID"), std::string::npos);
  auto bad_port = ReadJobSetup(
      Options(), {{"SLURM_JOB_ID", "1"}, {"SLURM_JOB_NODELIST", "a"}, {"STRUN_COORD_PORT", "0"}});
  EXPECT_NE(bad_port.error().message.find("STRUN_COORD_PORT=0"), std::string::npos);
  DaemonOptions o = Options();
  o.nodes = 3;
  auto too_many = ReadJobSetup(o, {{"SLURM_JOB_ID", "1"}, {"SLURM_JOB_NODELIST", "a,b"}});
  EXPECT_NE(too_many.error().message.find("only 2 nodes"), std::string::npos);
}

TEST(LaunchEnvironment, AddsTheServiceAndDropsTheBatchTaskCount) {
  const EnvMap env =
      LaunchEnvironment({{"SLURM_NTASKS", "8"}, {"SLURM_NPROCS", "8"}, {"PATH", "/bin"}}, "s3cret",
                        "10.0.0.1", 4242, LaunchRunKey("7", 1, 2), false);
  EXPECT_EQ(env, (EnvMap{{"PATH", "/bin"},
                         {"STRUN_COORD_HOST", "10.0.0.1"},
                         {"STRUN_COORD_PORT", "4242"},
                         {"STRUN_COORD_RUN_KEY", "strund|7|1|2"},
                         {"STRUN_JOB_SECRET", "s3cret"}}));
  EXPECT_EQ(
      LaunchEnvironment({{"SLURM_NTASKS", "8"}}, "s", "h", 1, "k", true).count("SLURM_NTASKS"), 1u);
}

TEST(LaunchEnvironment, ElasticLaunchesAskForTheirDp) {
  const EnvMap env = LaunchEnvironment({}, "s", "h", 1, "k", false, ElasticLayout{3, 6, 2}, 12);
  EXPECT_EQ(env.at("STRUN_ELASTIC_DP"), "6");
  EXPECT_EQ(env.at("STRUN_ELASTIC_MICRO_BATCHES"), "12");
  const EnvMap fixed = LaunchEnvironment({}, "s", "h", 1, "k", false);
  EXPECT_EQ(fixed.count("STRUN_ELASTIC_DP") + fixed.count("STRUN_ELASTIC_MICRO_BATCHES"), 0u);
}

TEST(ReadJobSetup, ElasticOnlyWithARange) {
  const EnvMap env = {{"SLURM_JOB_ID", "1"}, {"SLURM_JOB_NODELIST", "a,b"}};
  DaemonOptions o = Options();
  o.nodes = 2;
  EXPECT_FALSE(ReadJobSetup(o, env)->elastic.has_value());
  o.min_nodes = 1;
  o.procs_per_node = 4;
  o.micro_batches = 8;
  auto s = ReadJobSetup(o, env);
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_TRUE(s->elastic.has_value());
  EXPECT_EQ(s->elastic->min_nodes, 1);
  EXPECT_EQ(s->elastic->micro_batches, 8);
  EXPECT_EQ(s->nodes_needed, 2);
}

// 4 processes per node, tp * pp = 2, dp * accumulation = 8 micro-batches per step.
ElasticBatch Batch(int min_nodes, int micro_batches = 8, int model_parallel = 2) {
  return ElasticBatch{min_nodes, 4, model_parallel, micro_batches};
}

TEST(ElasticLayoutFor, DpAndAccumulationOfANodeCount) {
  auto four = ElasticLayoutFor(Batch(1), 4);  // 16 processes: dp 8, accumulation 1
  ASSERT_TRUE(four.ok());
  EXPECT_EQ(four->dp, 8);
  EXPECT_EQ(four->accumulation, 1);
  auto one = ElasticLayoutFor(Batch(1), 1);  // 4 processes: dp 2, accumulation 4
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->dp, 2);
  EXPECT_EQ(one->accumulation, 4);
  EXPECT_EQ(ElasticLayoutFor(Batch(1), 3).error().message,
            "8 micro-batches per step (--micro-batches) do not split over 6 data-parallel "
            "replicas");
  EXPECT_EQ(ElasticLayoutFor(Batch(1, 8, 8), 1).error().message,
            "4 processes do not hold whole model replicas of 8 (--model-parallel, tp * pp)");
}

TEST(DecideNodeCount, EnoughNodesKeepTheCount) {
  for (auto elastic : {std::optional<ElasticBatch>(), std::optional(Batch(1))}) {
    auto d = DecideNodeCount(4, 5, elastic);
    EXPECT_EQ(d.action, NodeCountDecision::kLaunch);
    EXPECT_EQ(d.nodes, 4);
    EXPECT_EQ(DecideNodeCount(4, 4, elastic).action, NodeCountDecision::kLaunch);
  }
}

TEST(DecideNodeCount, WithoutElasticTooFewNodesRequeue) {
  auto d = DecideNodeCount(2, 1, std::nullopt);
  EXPECT_EQ(d.action, NodeCountDecision::kRequeue);
  EXPECT_EQ(d.reason, "");
}

TEST(DecideNodeCount, ShrinksToTheLargestCountThatHoldsTheBatch) {
  // 3 usable of 4: 3 nodes give dp 6, which 8 micro-batches do not fill; 2 nodes give dp 4.
  auto d = DecideNodeCount(4, 3, Batch(1));
  ASSERT_EQ(d.action, NodeCountDecision::kShrink);
  EXPECT_EQ(d.nodes, 2);
  ASSERT_TRUE(d.from && d.to);
  EXPECT_EQ(d.from->nodes, 4);
  EXPECT_EQ(d.from->dp, 8);
  EXPECT_EQ(d.from->accumulation, 1);
  EXPECT_EQ(d.to->nodes, 2);
  EXPECT_EQ(d.to->dp, 4);
  EXPECT_EQ(d.to->accumulation, 2);
  // The recovery test's job: 2 nodes of 1 process, dp 2 -> 1, accumulation 1 -> 2.
  auto test_job = DecideNodeCount(2, 1, ElasticBatch{1, 1, 1, 2});
  ASSERT_EQ(test_job.action, NodeCountDecision::kShrink);
  EXPECT_EQ(test_job.to->dp, 1);
  EXPECT_EQ(test_job.to->accumulation, 2);
}

TEST(DecideNodeCount, NotBelowTheMinimum) {
  // Only 2 nodes would hold the batch, but MIN is 3.
  auto d = DecideNodeCount(4, 3, Batch(3));
  ASSERT_EQ(d.action, NodeCountDecision::kRequeue);
  EXPECT_EQ(d.reason,
            "not continuing on fewer nodes: 3 nodes: 8 micro-batches per step (--micro-batches) "
            "do not split over 6 data-parallel replicas");
  auto below = DecideNodeCount(4, 1, Batch(2));
  ASSERT_EQ(below.action, NodeCountDecision::kRequeue);
  EXPECT_EQ(below.reason,
            "not continuing on fewer nodes: 1 usable node is below the minimum of 2 (--nodes "
            "MIN:MAX)");
}

TEST(DecideNodeCount, RequeuesWhenNoSmallerCountDivides) {
  // 6 micro-batches, 2 processes per replica, 4 per node: dp 4 at 2 nodes does not even start;
  // 3 nodes hold dp 6. With 2 usable: dp 4 (2 nodes) and dp 2 (1 node) of 6 -> 1 node.
  auto one = DecideNodeCount(3, 2, Batch(1, 6));
  ASSERT_EQ(one.action, NodeCountDecision::kShrink);
  EXPECT_EQ(one.nodes, 1);
  EXPECT_EQ(one.to->accumulation, 3);
  // 9 micro-batches: dp 4 and dp 2 both fail.
  auto none = DecideNodeCount(3, 2, ElasticBatch{1, 4, 2, 12 - 3});
  ASSERT_EQ(none.action, NodeCountDecision::kRequeue);
  EXPECT_EQ(none.reason,
            "not continuing on fewer nodes: 2 nodes: 9 micro-batches per step (--micro-batches) "
            "do not split over 4 data-parallel replicas; 1 node: 9 micro-batches per step "
            "(--micro-batches) do not split over 2 data-parallel replicas");
  // tp * pp of 8 no longer fits one node of 4 processes.
  auto mp = DecideNodeCount(2, 1, ElasticBatch{1, 4, 8, 1});
  ASSERT_EQ(mp.action, NodeCountDecision::kRequeue);
  EXPECT_NE(mp.reason.find("1 node: 4 processes do not hold whole model replicas of 8"),
            std::string::npos);
}

TEST(DecideWatch, SignalsAndLostAgentsStopFirst) {
  WatchFacts f;
  f.srun_running = false;
  f.lost_agent_node = "nid002";
  EXPECT_EQ(DecideWatch(f).reason, "lost strun agent on nid002");
  f.stop_signal = SIGINT;
  EXPECT_EQ(DecideWatch(f).action, WatchDecision::kStop);
  EXPECT_NE(DecideWatch(f).reason.find("strund received"), std::string::npos);
}

TEST(DecideWatch, DeadlinesAndSrunsEnd) {
  WatchFacts f;
  f.now = 10;
  EXPECT_EQ(DecideWatch(f).action, WatchDecision::kWatch);
  f.preempt_deadline = 10;
  EXPECT_EQ(DecideWatch(f).reason, "pre-emption: the step did not exit in time");
  f.outcome_deadline = 9;
  EXPECT_EQ(DecideWatch(f).reason, "the coordination service finished but srun still runs");
  f.srun_running = false;
  EXPECT_EQ(DecideWatch(f).action, WatchDecision::kSrunEnded);
}

coord::Exit Outcome(int code, bool preempted = false) {
  coord::Exit e;
  e.code = code;
  e.preempted = preempted;
  e.reason = code == 0 ? "every worker succeeded" : "rank 0 exited with code 1";
  return e;
}

TEST(DecideLaunchEnd, OutcomesMapToEnds) {
  LaunchFacts f;
  f.outcome = Outcome(0);
  EXPECT_EQ(DecideLaunchEnd(f)->end, LaunchEnd::kDone);
  f.outcome = Outcome(0, true);
  EXPECT_EQ(DecideLaunchEnd(f)->end, LaunchEnd::kPreempted);
  f.outcome = Outcome(1);
  EXPECT_EQ(DecideLaunchEnd(f)->end, LaunchEnd::kFailed);
  f.preempt_requested = true;
  EXPECT_EQ(DecideLaunchEnd(f)->reason, "strund received a pre-emption or time-limit signal");
  f.stop_signal = SIGHUP;
  f.stop_reason = "strund received Hangup";
  EXPECT_EQ(DecideLaunchEnd(f)->end, LaunchEnd::kStopped);
  EXPECT_FALSE(DecideLaunchEnd(LaunchFacts{}).has_value());
}

TEST(DecideLaunchEnd, LostAgentsAndDownNodesAreExcluded) {
  LaunchFacts f;
  f.outcome = Outcome(1);
  f.outcome->lost_agents = {{1, "nid002"}};
  auto v = DecideLaunchEnd(f);
  ASSERT_TRUE(v && v->exclude);
  EXPECT_EQ(v->end, LaunchEnd::kNodeFault);
  EXPECT_EQ(v->exclude->node, "nid002");
  EXPECT_EQ(v->exclude->kind, "lost_agent");
  EXPECT_EQ(v->reason, "the connection to strun agent 1 was lost (node nid002)");
  f.outcome = Outcome(0);  // an agent lost after success still counts
  f.agent_lost = std::make_pair(std::string("nid003"), std::string("closed"));
  EXPECT_EQ(DecideLaunchEnd(f)->exclude->node, "nid003");
  f.node_fault = std::make_pair(std::string("nid004"), std::string("Slurm reports nid004 DOWN"));
  v = DecideLaunchEnd(f);
  EXPECT_EQ(v->exclude->kind, "node_down");
  EXPECT_FALSE(v->fault);  // counted when it was seen
}

TEST(DecideWithoutOutcome, UnhealthyNodeElseConfigurationError) {
  auto v = DecideWithoutOutcome({{"nid001", "Slurm reports nid001 DOWN"}}, 2, 0);
  EXPECT_EQ(v.end, LaunchEnd::kNodeFault);
  EXPECT_TRUE(v.fault);
  EXPECT_EQ(v.exclude->node, "nid001");
  v = DecideWithoutOutcome({}, 0, 1 << 8);
  EXPECT_EQ(v.end, LaunchEnd::kError);
  EXPECT_NE(v.reason.find("srun ended (exit code 1) before any strun agent joined"),
            std::string::npos);
  v = DecideWithoutOutcome({}, 1, 0);
  EXPECT_EQ(v.end, LaunchEnd::kNodeFault);
  EXPECT_FALSE(v.exclude.has_value());
}

TEST(DecideAfterLaunch, ExitRequeueOrRelaunch) {
  LaunchVerdict fault{LaunchEnd::kNodeFault, "lost strun agent", std::nullopt, false};
  EXPECT_EQ(DecideAfterLaunch(fault, std::nullopt, 1, 0, 0, 3).action, JobVerdict::kRelaunch);
  JobVerdict used = DecideAfterLaunch(fault, std::nullopt, 4, 0, 3, 3);
  EXPECT_EQ(used.code, 1);
  EXPECT_NE(used.message.find("all 3 relaunches"), std::string::npos);
  EXPECT_EQ(
      DecideAfterLaunch({LaunchEnd::kPreempted, "p", std::nullopt, false}, std::nullopt, 1, 0, 0, 3)
          .action,
      JobVerdict::kRequeue);
  EXPECT_EQ(DecideAfterLaunch({LaunchEnd::kStopped, "s", std::nullopt, false}, std::nullopt, 1,
                              SIGINT, 0, 3)
                .code,
            130);
  coord::Exit out = Outcome(1);
  launcher::WorkerFailure root;
  root.rank = 3;
  root.exitcode = 1;
  root.kind = "exit_code";
  out.root_cause = root;
  JobVerdict failed =
      DecideAfterLaunch({LaunchEnd::kFailed, out.reason, std::nullopt, false}, out, 1, 0, 0, 3);
  EXPECT_EQ(failed.result, "failed");
  EXPECT_NE(failed.message.find("root cause: rank 3"), std::string::npos) << failed.message;
  EXPECT_EQ(
      DecideAfterLaunch({LaunchEnd::kDone, "ok", std::nullopt, false}, std::nullopt, 1, 0, 0, 3)
          .message,
      "the job finished: ok");
}

TEST(DecideRequeue, CancelledJobsStayCancelled) {
  Result<std::string> cancelled = std::string("CANCELLED"), running = std::string("RUNNING");
  Result<std::string> unknown = MakeError("slurmctld is down");
  EXPECT_EQ(DecideRequeue("r", true, &cancelled, 0, 3).code, 143);
  RequeueDecision d = DecideRequeue("r", true, &unknown, 0, 3);
  EXPECT_FALSE(d.request);
  EXPECT_EQ(d.code, 75);
  EXPECT_EQ(d.error, "slurmctld is down");
  EXPECT_TRUE(DecideRequeue("r", true, &running, 0, 3).request);
  d = DecideRequeue("r", false, nullptr, 3, 3);
  EXPECT_EQ(d.code, 1);
  EXPECT_EQ(d.error, "SLURM_RESTART_COUNT=3 has reached --max-requeues=3");
}

}  // namespace
}  // namespace strun::daemon
