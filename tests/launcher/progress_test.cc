// The progress channel's line format and the worker-side reporter (progress.h).
#include "strun/launcher/progress.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace strun::launcher {
namespace {

TEST(ProgressLine, ParsesEveryPhase) {
  auto r = ParseProgressLine(R"({"phase": "training", "step": 12})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->phase, ProgressPhase::kTraining);
  EXPECT_EQ(r->step, 12);
  r = ParseProgressLine(R"({"phase":"startup"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->phase, ProgressPhase::kStartup);
  EXPECT_EQ(r->step, -1);
  r = ParseProgressLine(R"({"phase": "checkpoint", "step": 100, "extra": true})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->phase, ProgressPhase::kCheckpoint);
  r = ParseProgressLine("{\"phase\": \"preempted\", \"step\": 57}\r");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->phase, ProgressPhase::kPreempted);
  EXPECT_EQ(r->step, 57);
}

TEST(ProgressLine, RejectsWhatIsNotTheProtocol) {
  for (const char* bad : {"", "step 5", "{}", R"({"phase": "sleeping"})", R"({"phase": 3})",
                          R"({"phase": "training"})", R"({"phase": "training", "step": -4})",
                          R"({"phase": "training", "step": "7"})", R"({"phase": "preempted"})",
                          "[1,2]", R"({"phase": "training", "step": 1.5})"})
    EXPECT_FALSE(ParseProgressLine(bad)) << bad;
}

TEST(ProgressLine, FormatRoundTrips) {
  for (ProgressPhase p : {ProgressPhase::kStartup, ProgressPhase::kTraining,
                          ProgressPhase::kCheckpoint, ProgressPhase::kPreempted}) {
    const long long step = p == ProgressPhase::kStartup ? -1 : 42;
    std::string line = FormatProgressLine({p, step});
    ASSERT_EQ(line.back(), '\n');
    line.pop_back();
    auto r = ParseProgressLine(line);
    ASSERT_TRUE(r) << line;
    EXPECT_EQ(r->phase, p);
    EXPECT_EQ(r->step, step);
  }
}

TEST(ProgressReporter, WritesOneRecordPerReportAndNeverBlocks) {
  int sp[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp), 0);
  setenv("STRUN_PROGRESS_FD", std::to_string(sp[1]).c_str(), 1);
  ProgressReporter reporter;
  unsetenv("STRUN_PROGRESS_FD");
  ASSERT_TRUE(reporter.enabled());
  reporter.Report(ProgressPhase::kTraining, 3);
  char buf[256];
  ssize_t n = recv(sp[0], buf, sizeof buf, MSG_DONTWAIT);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, size_t(n)), "{\"phase\": \"training\", \"step\": 3}\n");
  // Nobody reads: the socket fills up and reports are dropped instead of blocking training.
  for (int i = 0; i < 100000; ++i) reporter.Report(ProgressPhase::kTraining, i);
  // The reader is gone: no SIGPIPE (the test would die).
  close(sp[0]);
  reporter.Report(ProgressPhase::kTraining, 4);
  close(sp[1]);
}

TEST(ProgressReporter, DisabledWithoutAValidSocket) {
  unsetenv("STRUN_PROGRESS_FD");
  EXPECT_FALSE(ProgressReporter().enabled());
  for (const char* bad : {"", "x", "-1", "12abc", "99999"}) {
    setenv("STRUN_PROGRESS_FD", bad, 1);
    EXPECT_FALSE(ProgressReporter().enabled()) << bad;
  }
  // A number that names an open file, not a socket: ignored, nothing written into the file.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  setenv("STRUN_PROGRESS_FD", std::to_string(fds[1]).c_str(), 1);
  EXPECT_FALSE(ProgressReporter().enabled());
  unsetenv("STRUN_PROGRESS_FD");
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace strun::launcher
