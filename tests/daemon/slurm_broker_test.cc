#include "strun/daemon/slurm_broker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

namespace strun::daemon {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

// No Slurm here: the broker must pass libslurm's errors and the fallbacks through.
class SlurmBrokerTest : public ::testing::Test {
 protected:
  void SetUp() override { setenv("SLURM_CONF", "/nonexistent/strund-test/slurm.conf", 1); }
  void TearDown() override { unsetenv("SLURM_CONF"); }
};

TEST_F(SlurmBrokerTest, AnswersWhileAnotherThreadIsBusy) {
  auto broker = SlurmBroker::Start();  // before the thread, as strund does
  ASSERT_TRUE(broker.ok()) << broker.error().message;
  std::atomic<bool> stop{false};
  // Holds the allocator and stdio locks as often as it can: a child forked from this process
  // could inherit them held, the broker's children cannot.
  std::thread busy([&] {
    while (!stop) {
      std::string s(1000, 'x');
      std::fprintf(stderr, "%s", s.substr(0, 0).c_str());
    }
  });
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    auto states = (*broker)->NodeStates({"nid001"});
    ASSERT_FALSE(states.ok());
    EXPECT_THAT(states.error().message,
                HasSubstr("SLURM_CONF=/nonexistent/strund-test/slurm.conf"));
    auto addr = (*broker)->NodeAddress("localhost");
    ASSERT_TRUE(addr.ok()) << addr.error().message;
    EXPECT_THAT(*addr, AnyOf("127.0.0.1", "::1"));
  }
  stop = true;
  busy.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(SlurmBrokerTest, PassesErrorsOfEveryCallThrough) {
  auto broker = SlurmBroker::Start();
  ASSERT_TRUE(broker.ok());
  auto steps = (*broker)->JobSteps(12);
  ASSERT_FALSE(steps.ok());
  EXPECT_THAT(steps.error().message, HasSubstr("listing the steps of job 12"));
  auto kill = (*broker)->KillJobStep(12, 0, SIGKILL);
  ASSERT_FALSE(kill.ok());
  EXPECT_THAT(kill.error().message, HasSubstr("12.0"));
  auto requeue = (*broker)->RequeueJob(12);
  ASSERT_FALSE(requeue.ok());
  EXPECT_THAT(requeue.error().message, HasSubstr("requeueing job 12"));
  auto job_state = (*broker)->JobState(12);
  ASSERT_FALSE(job_state.ok());
  EXPECT_THAT(job_state.error().message, HasSubstr("the state of job 12"));
  auto none = (*broker)->NodeStates({});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto bad = (*broker)->NodeAddress("nid001.strund-test.invalid");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, HasSubstr("nid001.strund-test.invalid"));
}

TEST_F(SlurmBrokerTest, IgnoresTheSignalsStrundHandlesAndExitsWithItsOwner) {
  auto broker = SlurmBroker::Start();
  ASSERT_TRUE(broker.ok());
  const pid_t pid = (*broker)->pid();
  for (int s : {SIGUSR1, SIGTERM, SIGINT, SIGHUP}) kill(pid, s);
  EXPECT_TRUE((*broker)->NodeStates({}).ok()) << "still answering";
  broker->reset();
  EXPECT_EQ(kill(pid, 0), -1) << "the broker is gone (and reaped)";
}

}  // namespace
}  // namespace strun::daemon
