// strun on the local Slurm cluster with a real PyTorch script (issue 2, section 4): both launch
// modes, with and without PMIx, under sbatch, a worker failing on the second node, a pre-emption
// signal reaching every worker, and a cancelled job leaving nothing behind.
#include <signal.h>

#include <algorithm>
#include <set>

#include "cluster/cluster_fixture.h"
#include "cluster/wait_for.h"
#include "integration/torch_job.h"

namespace strun::testing {
namespace {

using namespace std::chrono_literals;

// Importing torch takes seconds per process on a loaded two-core machine.
constexpr auto kJobTimeout = 240s;

class StrunOnSlurm : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = FreshDir(cluster().shared_dir() + "/" + info->name());
  }

  // Runs `srun_args strun strun_args torch_check.py` and returns the result.
  CommandResult Launch(const std::string& srun_args, const std::string& strun_args,
                       Env extra = {}) {
    Env env = TorchEnv(dir_);
    for (auto& [k, v] : extra) env[k] = v;
    std::string cmd = "unset OMP_NUM_THREADS TORCH_NCCL_ASYNC_ERROR_HANDLING; cd " +
                      ShellQuote(dir_) + " && srun " + srun_args + " " + ShellQuote(kStrun) + " " +
                      strun_args + " " + ShellQuote(kTorchCheck);
    return cluster().Run(cmd, kJobTimeout, env);
  }

  // Every rank of a 4-rank, 2-node job recorded a successful attempt `attempt`; ranks 0-1 on
  // nid001, 2-3 on nid002, one master address that is nid001's NodeAddr.
  void ExpectTwoNodeLayout(const std::map<int, RankRecord>& records, int attempt,
                           const std::string& context) {
    ASSERT_EQ(records.size(), 4u) << context;
    for (const auto& [rank, r] : records) {
      EXPECT_EQ(r.rank, rank);
      EXPECT_EQ(r.world_size, 4);
      EXPECT_EQ(r.local_world_size, 2);
      EXPECT_EQ(r.group_world_size, 2);
      EXPECT_EQ(r.group_rank, rank / 2) << "rank " << rank;
      EXPECT_EQ(r.local_rank, rank % 2) << "rank " << rank;
      EXPECT_EQ(r.node, LocalSlurmCluster::NodeName(rank / 2)) << "rank " << rank;
      EXPECT_EQ(r.master_addr, "127.0.0.1")
          << "rank " << rank << ": MASTER_ADDR is not nid001's NodeAddr";
      EXPECT_EQ(r.master_port, records.begin()->second.master_port);
      EXPECT_EQ(r.restart_count, attempt);
      ASSERT_TRUE(r.slurm_job_id.has_value());
      EXPECT_EQ(r.run_id, *r.slurm_job_id);
    }
  }

  std::string dir_;
};

TEST_F(StrunOnSlurm, OneAgentPerNodeStartsTwoWorkersEach) {
  auto r = Launch("-N2 --ntasks-per-node=1", "--nproc-per-node=2",
                  {{"CHECK_SLURM_MODE", "node"},
                   {"CHECK_WORLD_SIZE", "4"},
                   {"CHECK_LOCAL_WORLD_SIZE", "2"},
                   {"CHECK_NNODES", "2"},
                   {"CHECK_MAX_RESTARTS", "0"},
                   {"CHECK_RESTART_COUNT", "0"}});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(CountOkLines(r.out), 4) << r.Describe();
  ExpectTwoNodeLayout(ReadRecords(dir_, "attempt0-rank"), 0, r.Describe());
}

TEST_F(StrunOnSlurm, OneAgentPerTaskRunsOneWorkerEach) {
  auto r = Launch("-N2 --ntasks-per-node=2", "",
                  {{"CHECK_SLURM_MODE", "task"},
                   {"CHECK_WORLD_SIZE", "4"},
                   {"CHECK_LOCAL_WORLD_SIZE", "2"},
                   {"CHECK_NNODES", "2"}});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(CountOkLines(r.out), 4) << r.Describe();
  ExpectTwoNodeLayout(ReadRecords(dir_, "attempt0-rank"), 0, r.Describe());
}

TEST_F(StrunOnSlurm, OneAgentPerNodeUnderPmix) {
  auto r = Launch(
      "--mpi=pmix -N2 --ntasks-per-node=1", "--nproc-per-node=2",
      {{"CHECK_SLURM_MODE", "node"}, {"CHECK_WORLD_SIZE", "4"}, {"CHECK_LOCAL_WORLD_SIZE", "2"}});
  ASSERT_TRUE(r.ok()) << r.Describe();
  auto records = ReadRecords(dir_, "attempt0-rank");
  ExpectTwoNodeLayout(records, 0, r.Describe());
  for (const auto& [rank, rec] : records) {
    ASSERT_TRUE(rec.pmix_rank.has_value()) << "rank " << rank << " ran without PMIx";
    EXPECT_EQ(*rec.pmix_rank, std::to_string(rank / 2)) << "PMIX_RANK is the agent's task rank";
  }
}

TEST_F(StrunOnSlurm, OneAgentPerTaskUnderPmix) {
  auto r = Launch(
      "--mpi=pmix -N2 --ntasks-per-node=2", "",
      {{"CHECK_SLURM_MODE", "task"}, {"CHECK_WORLD_SIZE", "4"}, {"CHECK_LOCAL_WORLD_SIZE", "2"}});
  ASSERT_TRUE(r.ok()) << r.Describe();
  auto records = ReadRecords(dir_, "attempt0-rank");
  ExpectTwoNodeLayout(records, 0, r.Describe());
  for (const auto& [rank, rec] : records) {
    ASSERT_TRUE(rec.pmix_rank.has_value()) << "rank " << rank << " ran without PMIx";
    EXPECT_EQ(*rec.pmix_rank, std::to_string(rank));
  }
}

// The example batch script of etc/slurm, as a user would submit it.
TEST_F(StrunOnSlurm, SbatchOfTheExampleJobScript) {
  Env env = TorchEnv(dir_);
  env["STRUN"] = kStrun;
  env["NPROC_PER_NODE"] = "2";
  env["CHECK_SLURM_MODE"] = "node";
  env["CHECK_WORLD_SIZE"] = "4";
  auto id =
      cluster().Submit("--chdir=" + ShellQuote(dir_) + " --output=" + ShellQuote(dir_ + "/job.out"),
                       kSbatchExample, {kTorchCheck}, env);
  ASSERT_TRUE(id.ok()) << id.error().message;
  auto state = cluster().WaitForJob(*id, kJobTimeout);
  std::string out = ReadFileOr(dir_ + "/job.out");
  ASSERT_TRUE(state.ok()) << state.error().message << "\n" << out;
  EXPECT_EQ(*state, "COMPLETED") << out;
  EXPECT_EQ(CountOkLines(out), 4) << out;
  auto records = ReadRecords(dir_, "attempt0-rank");
  ExpectTwoNodeLayout(records, 0, out);
  for (const auto& [rank, rec] : records) EXPECT_EQ(rec.slurm_job_id, std::to_string(*id));
}

// A worker on the second node fails in the first attempt: every agent stops its workers and the
// whole group starts again with TORCHELASTIC_RESTART_COUNT=1 on both nodes; the job succeeds.
TEST_F(StrunOnSlurm, WorkerFailingOnSecondNodeRestartsTheGroupOnBothNodes) {
  auto r = Launch("-N2 --ntasks-per-node=1", "--nproc-per-node=2 --max-restarts=1",
                  {{"FAIL_ONCE_NODE", "nid002"},
                   {"FAIL_ONCE_LOCAL_RANK", "1"},
                   {"CHECK_MAX_RESTARTS", "1"},
                   {"CHECK_SLURM_MODE", "node"}});
  ASSERT_TRUE(r.ok()) << r.Describe();
  auto failed = ReadRecords(dir_, "failed-attempt0-rank");
  ASSERT_EQ(failed.size(), 1u) << r.Describe();
  EXPECT_EQ(failed.begin()->first, 3);
  EXPECT_EQ(failed.begin()->second.node, "nid002");
  // No rank finished attempt 0: the others were stopped, not left to run on.
  EXPECT_TRUE(ReadRecords(dir_, "attempt0-rank").empty()) << r.Describe();
  auto second = ReadRecords(dir_, "attempt1-rank");
  ExpectTwoNodeLayout(second, 1, r.Describe());
  std::set<std::string> restarted_nodes;
  for (const auto& [rank, rec] : second) {
    EXPECT_EQ(rec.max_restarts, 1);
    restarted_nodes.insert(rec.node);
  }
  EXPECT_EQ(restarted_nodes, (std::set<std::string>{"nid001", "nid002"}));
  EXPECT_EQ(CountOkLines(r.out), 4) << r.Describe();
}

// With no restarts left the step fails with the failing worker's exit code.
TEST_F(StrunOnSlurm, WorkerFailureWithoutRestartsFailsTheStepWithItsExitCode) {
  auto r = Launch("-N2 --ntasks-per-node=1", "--nproc-per-node=2",
                  {{"FAIL_ONCE_NODE", "nid002"}, {"FAIL_ONCE_LOCAL_RANK", "0"}});
  EXPECT_FALSE(r.timed_out) << r.Describe();
  EXPECT_EQ(r.exit_code, 17) << r.Describe();
  EXPECT_EQ(ReadRecords(dir_, "failed-attempt0-rank").size(), 1u);
  EXPECT_TRUE(ReadRecords(dir_, "attempt1-rank").empty()) << "restarted although --max-restarts=0";
}

class StrunOnSlurmRunningJob : public StrunOnSlurm {
 protected:
  // Starts the 2x2 job in the background with workers that wait for the release file, and waits
  // until every worker is ready. Returns the job id.
  long StartWaitingJob(const std::string& name) {
    Env env = TorchEnv(dir_);
    env["WAIT_FOR_RELEASE"] = "1";
    job_ = cluster().Start(
        "unset OMP_NUM_THREADS; cd " + ShellQuote(dir_) + " && srun -N2 --ntasks-per-node=1 -J " +
            name + " " + ShellQuote(kStrun) +
            " --nproc-per-node=2 --signals-to-handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 " +
            ShellQuote(kTorchCheck),
        env);
    auto id = cluster().FindJob(name, 60s);
    EXPECT_TRUE(id.ok()) << id.error().message;
    bool ready =
        WaitFor([&] { return ReadRecords(dir_, "ready-rank").size() == 4 || !job_->Running(); },
                kJobTimeout);
    EXPECT_TRUE(ready && job_->Running()) << "the workers did not all get ready:\n"
                                          << job_->Wait(1s).Describe();
    return id.ok() ? *id : -1;
  }

  int Usr1Count(int rank) {
    auto text = ReadFileOr(dir_ + "/usr1-rank" + std::to_string(rank));
    auto at = text.find(':');
    return at == std::string::npos ? 0 : std::atoi(text.c_str() + at + 1);
  }

  // Every strun process of the job (agents and the helpers they fork).
  std::vector<ClusterProcess> StrunProcesses() {
    auto all = cluster().JobProcesses();
    std::vector<ClusterProcess> strun;
    std::copy_if(all.begin(), all.end(), std::back_inserter(strun),
                 [](const ClusterProcess& p) { return p.comm == "strun"; });
    return strun;
  }
  // The agents: strun processes that Slurm started (not forked by another strun).
  std::vector<ClusterProcess> Agents() {
    auto strun = StrunProcesses();
    std::vector<ClusterProcess> agents;
    std::copy_if(strun.begin(), strun.end(), std::back_inserter(agents),
                 [&](const ClusterProcess& p) {
                   return std::none_of(strun.begin(), strun.end(),
                                       [&](const ClusterProcess& q) { return q.pid == p.ppid; });
                 });
    return agents;
  }

  std::unique_ptr<BackgroundCommand> job_;
};

// SIGUSR1 (Slurm's pre-emption warning, --signal / scancel --signal) reaches every worker, which
// keeps running: first sent to the strun agents only (strun forwards it), then through scancel.
TEST_F(StrunOnSlurmRunningJob, Usr1ReachesEveryWorker) {
  long id = StartWaitingJob("strun-it-usr1");
  ASSERT_GT(id, 0);
  auto agents = Agents();
  ASSERT_EQ(agents.size(), 2u);
  for (const auto& a : agents) kill(a.pid, SIGUSR1);
  for (int rank = 0; rank < 4; ++rank)
    EXPECT_TRUE(WaitFor([&] { return Usr1Count(rank) >= 1; }, 30s))
        << "rank " << rank << " got no SIGUSR1 from strun";
  std::vector<int> before;
  for (int rank = 0; rank < 4; ++rank) before.push_back(Usr1Count(rank));

  auto scancel = cluster().Run("scancel --signal=USR1 " + std::to_string(id), 30s);
  ASSERT_TRUE(scancel.ok()) << scancel.Describe();
  for (int rank = 0; rank < 4; ++rank)
    EXPECT_TRUE(WaitFor([&] { return Usr1Count(rank) > before[rank]; }, 30s))
        << "rank " << rank << " got no SIGUSR1 from scancel --signal=USR1";

  ASSERT_TRUE(RunCommand("touch " + ShellQuote(dir_ + "/release"), 10s).ok());
  auto r = job_->Wait(kJobTimeout);
  ASSERT_TRUE(r.ok()) << "the job did not survive SIGUSR1:\n" << r.Describe();
  auto records = ReadRecords(dir_, "attempt0-rank");
  ASSERT_EQ(records.size(), 4u);
  for (const auto& [rank, rec] : records) EXPECT_GE(rec.usr1, 2) << "rank " << rank;
}

// scancel of a running job: srun returns, and no agent, worker or step process is left anywhere.
TEST_F(StrunOnSlurmRunningJob, CancelledJobLeavesNoProcessBehind) {
  long id = StartWaitingJob("strun-it-cancel");
  ASSERT_GT(id, 0);
  std::vector<int> pids;
  for (const auto& [rank, rec] : ReadRecords(dir_, "ready-rank")) pids.push_back(rec.pid);
  ASSERT_EQ(pids.size(), 4u);
  ASSERT_EQ(Agents().size(), 2u);
  for (const auto& p : StrunProcesses()) pids.push_back(p.pid);

  auto scancel = cluster().Run("scancel " + std::to_string(id), 30s);
  ASSERT_TRUE(scancel.ok()) << scancel.Describe();
  auto r = job_->Wait(60s);
  EXPECT_FALSE(r.timed_out) << r.Describe();
  EXPECT_NE(r.exit_code, 0);
  for (int pid : pids)
    EXPECT_TRUE(WaitFor([&] { return !ProcessAlive(pid); }, 30s))
        << "pid " << pid << " survived scancel";
  EXPECT_TRUE(WaitFor([&] { return cluster().JobProcesses().empty(); }, 30s));
  for (const auto& p : cluster().JobProcesses())
    ADD_FAILURE() << "left behind: " << p.pid << " " << p.cmdline;
}

}  // namespace
}  // namespace strun::testing
