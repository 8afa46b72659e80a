// Tests of stop_request.h. Each case runs in a forked child (death-test style): the handlers and
// the flag are process-wide.
#include "train/stop_request.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>

namespace strun::train {
namespace {

// Exits with `code` when `ok`, else 99 (EXPECT_EXIT then names the code that came back).
void ExitIf(bool ok, int code) { std::_Exit(ok ? code : 99); }

TEST(StopRequestTest, FirstSignalIsRecordedAndRepeatedUsr1IsHarmless) {
  EXPECT_EXIT(
      {
        if (!InstallStopSignalHandlers()) std::_Exit(98);
        bool ok = StopSignal() == 0;
        std::raise(SIGUSR1);
        ok = ok && StopSignal() == SIGUSR1;
        std::raise(SIGUSR1);  // Slurm may warn twice: still pending, still alive
        std::raise(SIGPIPE);  // ignored
        ok = ok && StopSignal() == SIGUSR1;
        ExitIf(ok, 0);
      },
      testing::ExitedWithCode(0), "");
}

TEST(StopRequestTest, SecondSigtermExitsAtOnceWith143) {
  EXPECT_EXIT(
      {
        if (!InstallStopSignalHandlers()) std::_Exit(98);
        std::raise(SIGUSR1);
        sleep(3);  // a second stop request, not the first one delivered twice
        std::raise(SIGTERM);
        std::_Exit(97);  // not reached
      },
      testing::ExitedWithCode(143), "");
}

// Slurm signals every process of a step and strun forwards the signal as well: one time limit
// reaches a worker twice within moments and must not cancel the checkpoint.
TEST(StopRequestTest, TheSameSigtermTwiceIsOneStop) {
  EXPECT_EXIT(
      {
        if (!InstallStopSignalHandlers()) std::_Exit(98);
        std::raise(SIGTERM);
        std::raise(SIGTERM);
        ExitIf(StopSignal() == SIGTERM, 0);
      },
      testing::ExitedWithCode(0), "");
}

TEST(StopRequestTest, FirstSigtermOrSigintIsGraceful) {
  for (int sig : {SIGTERM, SIGINT}) {
    EXPECT_EXIT(
        {
          if (!InstallStopSignalHandlers()) std::_Exit(98);
          std::raise(sig);
          ExitIf(StopSignal() == sig, 0);
        },
        testing::ExitedWithCode(0), "");
  }
}

TEST(StopRequestTest, SigintWhilePendingExitsWith130) {
  EXPECT_EXIT(
      {
        if (!InstallStopSignalHandlers()) std::_Exit(98);
        std::raise(SIGTERM);
        std::raise(SIGINT);
        std::_Exit(97);
      },
      testing::ExitedWithCode(130), "");
}

TEST(StopRequestTest, SignalNames) {
  EXPECT_EQ(StopSignalName(SIGUSR1), "SIGUSR1");
  EXPECT_EQ(StopSignalName(SIGTERM), "SIGTERM");
  EXPECT_EQ(StopSignalName(SIGINT), "SIGINT");
  EXPECT_EQ(StopSignalName(SIGHUP), "signal 1");
}

}  // namespace
}  // namespace strun::train
