// strund and the node state query on a real local Slurm cluster (tests/cluster): each test submits
// a batch job (sbatch --requeue --no-kill) whose script execs strund, which runs
// `srun strun --no-python strund_worker.sh` and must relaunch, restart, requeue or fail as the
// injected fault demands. The event log is the evidence.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>

#include "cluster/cluster_fixture.h"
#include "cluster/wait_for.h"
#include "strun/daemon/event_log.h"
#include "strun/slurm/node_state.h"

namespace strun::daemon {
namespace {

using namespace std::chrono_literals;
using strun::testing::ClusterOptions;
using strun::testing::ReadFileOr;
using strun::testing::RunCommand;
using strun::testing::ShellQuote;
using strun::testing::WaitFor;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;

class StrundCluster : public strun::testing::ClusterTest {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions options;
    options.nodes = 4;
    // A requeued job may start again once its credential expired (120 s by default), and then
    // waits for the next scheduling pass (60 s by default): keep both short.
    options.conf_lines = {"AuthInfo=cred_expire=5",
                          "SchedulerParameters=sched_interval=2,bf_interval=2"};
    StartCluster(options);
  }

  void SetUp() override {
    ClusterTest::SetUp();
    dir_ = cluster().shared_dir() + "/" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_TRUE(RunCommand("rm -rf " + dir_ + " && mkdir -p " + dir_, 10s).ok());
  }

  void TearDown() override {
    // Nodes a test drained come back for the next one.
    (void)cluster().Run(
        "for n in $(sinfo -h -N -t drain -o %N); do scontrol update nodename=$n state=resume; done",
        10s);
    ClusterTest::TearDown();
  }

  void Touch(const std::string& name) { std::ofstream(dir_ + "/" + name) << ""; }

  // Submits the job: strund STRUND_ARGS -- srun strun ... worker DIR STEPS.
  Result<long> Submit(const std::string& sbatch_args, const std::string& strund_args,
                      int steps = 30) {
    const std::string script = dir_ + "/job.sh";
    std::ofstream(script) << "#!/bin/bash\nexec " << STRUND_BIN << " --event-log " << dir_
                          << "/events.jsonl --node-check-interval 1 --stop-timeout 3 "
                          << strund_args << " -- srun " << STRUN_BIN
                          << " --nproc-per-node=1 --no-python "
                             ""
                          << WORKER_SCRIPT << " " << dir_ << " " << steps << "\n";
    chmod(script.c_str(), 0755);
    return cluster().Submit(
        "--requeue --no-kill --open-mode=append -o " + dir_ + "/job.out " + sbatch_args, script);
  }

  // Submits the job (job_).
  void Start(const std::string& sbatch_args, const std::string& strund_args, int steps = 30) {
    auto job = Submit(sbatch_args, strund_args, steps);
    ASSERT_TRUE(job.ok()) << job.error().message;
    job_ = *job;
  }

  // Waits up to 30 s for the job's workers to report training progress.
  void WaitForTraining() {
    ASSERT_TRUE(WaitFor([&] { return !Events("progress").empty(); }, 30s)) << Describe();
  }

  // Sends `scancel SCANCEL_ARGS` to the job.
  void Scancel(const std::string& scancel_args) {
    auto r = cluster().Run("scancel " + scancel_args + " " + std::to_string(job_), 10s);
    ASSERT_TRUE(r.ok()) << r.Describe();
  }

  // Waits up to `timeout` for the job to end (state_).
  void Finish(std::chrono::seconds timeout) {
    auto state = cluster().WaitForJob(job_, timeout);
    ASSERT_TRUE(state.ok()) << state.error().message << Describe();
    state_ = *state;
  }

  // Submits the job and waits up to `timeout` for it to end (job_, state_).
  void RunJob(const std::string& sbatch_args, const std::string& strund_args,
              std::chrono::seconds timeout) {
    ASSERT_NO_FATAL_FAILURE(Start(sbatch_args, strund_args));
    ASSERT_NO_FATAL_FAILURE(Finish(timeout));
  }

  // Submits a job of 60 steps that may be requeued once, sends it `scancel SCANCEL_ARGS` once it
  // trains and waits up to 120 s for it to end (job_, state_).
  void RunPreempted(const std::string& scancel_args) {
    ASSERT_NO_FATAL_FAILURE(Start("-N2", "--max-requeues 1", 60));
    ASSERT_NO_FATAL_FAILURE(WaitForTraining());
    ASSERT_NO_FATAL_FAILURE(Scancel(scancel_args));
    ASSERT_NO_FATAL_FAILURE(Finish(120s));
  }

  // The workers exited pre-empted and strund had Slurm requeue the job.
  void ExpectPreemptedAndRequeued() {
    auto exits = Events("exit");
    ASSERT_FALSE(exits.empty());
    EXPECT_EQ(exits[0]["preempted"], true) << Describe();
    auto requeues = Events("requeue");
    ASSERT_EQ(requeues.size(), 1u) << Describe();
    EXPECT_EQ(requeues[0]["requested"], true);
  }

  std::string Output() const { return ReadFileOr(dir_ + "/job.out"); }
  std::vector<Json> Events() const { return ReadEventLog(dir_ + "/events.jsonl"); }
  std::vector<Json> Events(const std::string& name) const {
    std::vector<Json> out;
    for (auto& e : Events())
      if (e.value("event", "") == name) out.push_back(e);
    return out;
  }
  std::string Describe() const {
    return "job output:\n" + Output() + "\nevent log:\n" + ReadFileOr(dir_ + "/events.jsonl");
  }

  std::string ExitCode() const {
    auto r = cluster().Run(
        "scontrol show job " + std::to_string(job_) + " | grep -o ' ExitCode=[0-9:]*'", 10s);
    return r.out;
  }

  std::string dir_;
  long job_ = -1;
  std::string state_;
};

TEST_F(StrundCluster, NodeStatesAgreeWithScontrolAndSeeDrainedNodes) {
  auto before = slurm::QueryNodeStates({"nid001", "nid003", "nid999"});
  ASSERT_TRUE(before.ok()) << before.error().message;
  ASSERT_EQ(before->size(), 3u);
  EXPECT_EQ((*before)[0].name, "nid001");
  EXPECT_EQ((*before)[0].state, "IDLE");
  EXPECT_TRUE((*before)[0].healthy);
  EXPECT_EQ((*before)[2].state, "UNKNOWN") << "a node slurmctld does not know";
  EXPECT_FALSE((*before)[2].healthy);

  ASSERT_TRUE(
      cluster().Run("scontrol update nodename=nid003 state=drain reason='bad GPU 3'", 10s).ok());
  auto after = slurm::QueryNodeStates({"nid003", "nid001"});
  ASSERT_TRUE(after.ok()) << after.error().message;
  const slurm::NodeState& drained = (*after)[0];
  EXPECT_FALSE(drained.healthy);
  EXPECT_EQ(drained.reason, "bad GPU 3");
  auto scontrol = cluster().Run("scontrol show node nid003 | grep -o 'State=[^ ]*'", 10s);
  EXPECT_EQ("State=" + drained.state + "\n", scontrol.out);
  EXPECT_TRUE((*after)[1].healthy);
}

TEST_F(StrundCluster, RelaunchesOnASpareNodeWhenAnAgentIsLost) {
  Touch("kill-agent-nid002");
  ASSERT_NO_FATAL_FAILURE(RunJob("-N3", "--nodes 2", 90s));
  EXPECT_EQ(state_, "COMPLETED") << Describe();
  auto launches = Events("launch");
  ASSERT_EQ(launches.size(), 2u) << Describe();
  EXPECT_EQ(launches[0]["nodes"], Json({"nid001", "nid002"}));
  EXPECT_EQ(launches[1]["nodes"], Json({"nid001", "nid003"})) << "the spare replaces the lost node";
  auto excluded = Events("node_excluded");
  ASSERT_EQ(excluded.size(), 1u) << Describe();
  EXPECT_EQ(excluded[0]["node"], "nid002");
  EXPECT_EQ(excluded[0]["kind"], "lost_agent");
  ASSERT_EQ(Events("relaunch").size(), 1u);
  auto summary = Events("summary");
  ASSERT_EQ(summary.size(), 1u) << Describe();
  EXPECT_EQ(summary[0]["result"], "done");
  EXPECT_EQ(summary[0]["relaunches"], 1);
  EXPECT_EQ(summary[0]["nodes_excluded"], 1);
  EXPECT_GT(summary[0]["time_lost_s"].get<double>(), 0);
  EXPECT_LT(summary[0]["goodput"].get<double>(), 1);
  EXPECT_EQ(Events("recovered").size(), 1u);
  // Rank 0 checkpoints every 5 steps; the ranks do not synchronise, so it may be a step ahead.
  EXPECT_THAT(Output(), ContainsRegex("rank 1 on nid003 starts at step (5|10)"))
      << "resumed from the checkpoint";
  EXPECT_THAT(Output(), HasSubstr("goodput"));
}

TEST_F(StrundCluster, WorkersAreRestartedInPlaceWithoutARelaunch) {
  Touch("fail-1");
  ASSERT_NO_FATAL_FAILURE(RunJob("-N2", "--max-restarts 2 --tensorboard-dir " + dir_ + "/tb", 90s));
  EXPECT_EQ(state_, "COMPLETED") << Describe();
  EXPECT_EQ(Events("launch").size(), 1u) << Describe();
  auto failures = Events("failure");
  ASSERT_EQ(failures.size(), 1u) << Describe();
  EXPECT_EQ(failures[0]["kind"], "exit_code");
  EXPECT_EQ(Events("restart").size(), 1u);
  auto summary = Events("summary");
  ASSERT_EQ(summary.size(), 1u);
  EXPECT_EQ(summary[0]["restarts"], 1);
  EXPECT_EQ(summary[0]["relaunches"], 0);

  // The same events in TensorBoard (tensorboard_events.h), read by an independent reader.
  auto read = RunCommand("/usr/bin/python3 " READ_TFEVENTS " " + dir_ + "/tb", 30s);
  ASSERT_TRUE(read.ok()) << read.err;
  const Json files = Json::parse(read.out);
  ASSERT_EQ(files.size(), 1u) << read.out;
  EXPECT_THAT(files[0]["file"].get<std::string>(),
              HasSubstr("/tb/strund_" + std::to_string(job_) + "/events.out.tfevents."));
  std::string texts;
  Json last_scalars;
  for (const Json& e : files[0]["events"]) {
    if (e.contains("texts")) texts += e["texts"]["strund/events"].get<std::string>();
    if (e.contains("scalars")) last_scalars = e["scalars"];
  }
  EXPECT_THAT(texts, HasSubstr("**failure**"));
  EXPECT_THAT(texts, HasSubstr("**summary**"));
  EXPECT_EQ(last_scalars["strund/restarts"], 1) << read.out;
  EXPECT_EQ(last_scalars["strund/relaunches"], 0);
}

TEST_F(StrundCluster, AFailureAfterTheLastRestartEndsTheJobWithoutARequeue) {
  Touch("fail-0");
  ASSERT_NO_FATAL_FAILURE(RunJob("-N2", "--max-restarts 0", 90s));
  EXPECT_EQ(state_, "FAILED") << Describe();
  EXPECT_THAT(ExitCode(), HasSubstr("ExitCode=1:0"));
  EXPECT_EQ(Events("launch").size(), 1u) << Describe();
  EXPECT_TRUE(Events("requeue").empty());
  auto summary = Events("summary");
  ASSERT_EQ(summary.size(), 1u);
  EXPECT_EQ(summary[0]["result"], "failed");
  EXPECT_THAT(Output(), HasSubstr("root cause: rank 0"));
}

TEST_F(StrundCluster, ANodeSlurmDrainsIsReplaced) {
  Touch("drain-nid002");
  ASSERT_NO_FATAL_FAILURE(RunJob("-N3", "--nodes 2", 90s));
  EXPECT_EQ(state_, "COMPLETED") << Describe();
  auto excluded = Events("node_excluded");
  ASSERT_EQ(excluded.size(), 1u) << Describe();
  EXPECT_EQ(excluded[0]["node"], "nid002");
  EXPECT_EQ(excluded[0]["kind"], "node_down");
  EXPECT_THAT(excluded[0]["evidence"].get<std::string>(), HasSubstr("DRAIN"));
  auto launches = Events("launch");
  ASSERT_EQ(launches.size(), 2u);
  EXPECT_EQ(launches[1]["nodes"], Json({"nid001", "nid003"}));
}

TEST_F(StrundCluster, RequeuesWhenTooFewHealthyNodesRemainAndTheJobResumes) {
  Touch("kill-agent-nid002");
  ASSERT_NO_FATAL_FAILURE(RunJob("-N2", "--nodes 2", 120s));
  EXPECT_EQ(state_, "COMPLETED") << Describe();
  auto requeues = Events("requeue");
  ASSERT_EQ(requeues.size(), 1u) << Describe();
  EXPECT_EQ(requeues[0]["requested"], true);
  EXPECT_THAT(requeues[0]["reason"].get<std::string>(), HasSubstr("only 1 of the 2 nodes"));
  auto starts = Events("strund_start");
  ASSERT_EQ(starts.size(), 2u);
  EXPECT_EQ(starts[1]["restart_count"], 1) << "SLURM_RESTART_COUNT of the requeued run";
  auto summaries = Events("summary");
  ASSERT_EQ(summaries.size(), 2u);
  EXPECT_EQ(summaries[0]["result"], "requeued");
  EXPECT_EQ(summaries[0]["exit_code"], 75);
  EXPECT_EQ(summaries[1]["result"], "done");
  EXPECT_EQ(summaries[1]["requeues"], 1) << "the second run continues the first one's accounting";
  EXPECT_EQ(summaries[1]["launches"], 2);
  EXPECT_THAT(Output(), ContainsRegex("rank 0 on nid00[12] starts at step (5|10)"));
}

TEST_F(StrundCluster, AtTheRequeueLimitTheJobFailsInsteadOfRequeueing) {
  Touch("kill-agent-nid001");
  ASSERT_NO_FATAL_FAILURE(RunJob("-N2", "--nodes 2 --max-requeues 0", 90s));
  EXPECT_EQ(state_, "FAILED") << Describe();
  EXPECT_THAT(ExitCode(), HasSubstr("ExitCode=1:0"));
  auto requeues = Events("requeue");
  ASSERT_EQ(requeues.size(), 1u) << Describe();
  EXPECT_EQ(requeues[0]["requested"], false);
  EXPECT_THAT(requeues[0]["error"].get<std::string>(), HasSubstr("--max-requeues=0"));
  EXPECT_EQ(Events("strund_start").size(), 1u);
}

TEST_F(StrundCluster, PreemptionCheckpointsAndRequeues) {
  // Once the workers train, Slurm's warning signal reaches the batch shell, which is strund.
  ASSERT_NO_FATAL_FAILURE(RunPreempted("--batch --signal=USR1"));
  EXPECT_EQ(state_, "COMPLETED") << Describe();
  auto signals = Events("signal");
  ASSERT_FALSE(signals.empty()) << Describe();
  EXPECT_EQ(signals[0]["number"], SIGUSR1);
  ASSERT_NO_FATAL_FAILURE(ExpectPreemptedAndRequeued());
  EXPECT_THAT(Output(), HasSubstr("pre-empted at step"));
  auto summaries = Events("summary");
  ASSERT_EQ(summaries.size(), 2u);
  EXPECT_EQ(summaries[1]["result"], "done");
}

TEST_F(StrundCluster, APreemptionSignalToTheStepAloneAlsoRequeues) {
  // Without --batch the signal reaches the step's tasks (the strun agents), not strund: the
  // service's outcome tells strund that the workers were pre-empted.
  ASSERT_NO_FATAL_FAILURE(RunPreempted("--signal=USR1"));
  EXPECT_EQ(state_, "COMPLETED") << Describe();
  ASSERT_NO_FATAL_FAILURE(ExpectPreemptedAndRequeued());
  for (const Json& e : Events("signal"))
    EXPECT_NE(e["number"], SIGUSR1) << "strund itself got no SIGUSR1";
}

TEST_F(StrundCluster, ACancelledJobIsNotRequeued) {
  ASSERT_NO_FATAL_FAILURE(Start("-N2", "", 600));
  ASSERT_NO_FATAL_FAILURE(WaitForTraining());
  // scancel sends SIGTERM to strund as a pre-emption would; the job's state tells them apart.
  ASSERT_NO_FATAL_FAILURE(Scancel(""));
  ASSERT_NO_FATAL_FAILURE(Finish(60s));
  ASSERT_TRUE(WaitFor([&] { return !Events("summary").empty(); }, 10s)) << Describe();
  EXPECT_EQ(cluster().JobState(job_), "CANCELLED") << Describe();
  auto requeues = Events("requeue");
  ASSERT_EQ(requeues.size(), 1u) << Describe();
  EXPECT_EQ(requeues[0]["requested"], false);
  EXPECT_EQ(Events("summary")[0]["result"], "cancelled");
}

}  // namespace
}  // namespace strun::daemon
