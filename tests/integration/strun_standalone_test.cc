// strun without Slurm: `strun --standalone --nproc-per-node=4 script.py` with a real PyTorch
// script, and no worker outliving a strun that is killed outright.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>

#include "cluster/wait_for.h"
#include "integration/torch_job.h"

namespace strun::testing {
namespace {

using namespace std::chrono_literals;

// Anything that would make strun think it runs under Slurm or change the worker contract.
const std::string kNoSlurm =
    "unset OMP_NUM_THREADS TORCH_NCCL_ASYNC_ERROR_HANDLING; for v in $(compgen -e | grep -E "
    "'^(SLURM|PMIX|PMI|PET)_'); "
    "do unset $v; done; ";

class StrunStandalone : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = FreshDir("/var/tmp/strun-integration-" + std::to_string(getpid()) + "/" + info->name());
  }
  void TearDown() override {
    std::filesystem::remove_all("/var/tmp/strun-integration-" + std::to_string(getpid()));
  }
  std::string dir_;
};

TEST_F(StrunStandalone, FourWorkersAllReduce) {
  Env env = TorchEnv(dir_);
  env["CHECK_WORLD_SIZE"] = "4";
  env["CHECK_LOCAL_WORLD_SIZE"] = "4";
  env["CHECK_NNODES"] = "1";
  env["CHECK_RESTART_COUNT"] = "0";
  auto r = RunCommand(
      kNoSlurm + ShellQuote(kStrun) + " --standalone --nproc-per-node=4 " + ShellQuote(kTorchCheck),
      240s, env);
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(CountOkLines(r.out), 4) << r.Describe();
  auto records = ReadRecords(dir_, "attempt0-rank");
  ASSERT_EQ(records.size(), 4u) << r.Describe();
  for (const auto& [rank, rec] : records) {
    EXPECT_EQ(rec.local_rank, rank);
    EXPECT_EQ(rec.group_rank, 0);
    EXPECT_EQ(rec.world_size, 4);
    EXPECT_FALSE(rec.slurm_job_id.has_value());
    // torchrun's --standalone makes a random run id.
    EXPECT_NE(rec.run_id, "none");
    EXPECT_EQ(rec.run_id, records.at(0).run_id);
  }
}

// The agent is SIGKILLed while its workers run: they must not outlive it.
TEST_F(StrunStandalone, KilledAgentLeavesNoWorkers) {
  Env env = TorchEnv(dir_);
  env["WAIT_FOR_RELEASE"] = "1";
  BackgroundCommand job(kNoSlurm + "exec " + ShellQuote(kStrun) +
                            " --standalone --nproc-per-node=2 " + ShellQuote(kTorchCheck),
                        env);
  bool ready =
      WaitFor([&] { return ReadRecords(dir_, "ready-rank").size() == 2 || !job.Running(); }, 240s);
  ASSERT_TRUE(ready && job.Running()) << job.Wait(1s).Describe();
  std::vector<int> workers;
  for (const auto& [rank, rec] : ReadRecords(dir_, "ready-rank")) workers.push_back(rec.pid);
  kill(job.pid(), SIGKILL);  // the shell exec'd strun: this is strun
  job.Wait(10s);
  for (int pid : workers) {
    EXPECT_TRUE(WaitFor([&] { return !ProcessAlive(pid); }, 10s))
        << "worker " << pid << " outlived its killed strun";
    kill(pid, SIGKILL);  // do not leave it running if the assertion failed
  }
}

}  // namespace
}  // namespace strun::testing
