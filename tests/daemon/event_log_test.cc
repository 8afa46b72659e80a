#include "strun/daemon/event_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <thread>

namespace strun::daemon {
namespace {

using ::testing::HasSubstr;

class EventLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/strund-event-log-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)!system(("rm -rf " + dir_).c_str()); }
  std::string dir_;
};

TEST(MakeEventLine, EveryLineCarriesTheJobContext) {
  EventContext ctx{"4242", 2, 3};
  Json line =
      MakeEventLine("node_excluded", {{"node", "nid002"}, {"kind", "lost_agent"}}, ctx, 1000.5);
  EXPECT_EQ(line["event"], "node_excluded");
  EXPECT_EQ(line["time"], 1000.5);
  EXPECT_EQ(line["job_id"], "4242");
  EXPECT_EQ(line["restart_count"], 2);
  EXPECT_EQ(line["launch"], 3);
  EXPECT_EQ(line["node"], "nid002");
  EXPECT_EQ(line["kind"], "lost_agent");
}

TEST(MakeEventLine, KeepsTheServicesTimeButNotItsRestartCount) {
  EventContext ctx{"7", 1, 1};
  Json service = {{"event", "restart"}, {"time", 5.0}, {"restart_count", 4}, {"delay_s", 0}};
  Json line = MakeEventLine("restart", service, ctx, 99);
  EXPECT_EQ(line["time"], 5.0);
  EXPECT_EQ(line["restart_count"], 1) << "SLURM_RESTART_COUNT, the job's";
  EXPECT_EQ(line["group_restart_count"], 4) << "the in-place restarts, renamed";
  EXPECT_EQ(MakeEventLine("x", Json(), ctx, 1)["event"], "x");
}

TEST_F(EventLogTest, AppendsWholeLinesAndReadsThemBack) {
  std::string path = dir_ + "/events.jsonl";
  {
    auto log = EventLog::Open(path);
    ASSERT_TRUE(log.ok()) << log.error().message;
    ASSERT_TRUE((*log)->Append({{"event", "a"}, {"n", 1}}, false).ok());
    ASSERT_TRUE((*log)->Append({{"event", "b"}, {"text", "line\nbreak"}}, true).ok());
  }
  {
    auto log = EventLog::Open(path);  // a requeued job appends
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->Append({{"event", "c"}}, true).ok());
  }
  std::ofstream(path, std::ios::app) << "not json\n";
  auto lines = ReadEventLog(path);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["event"], "a");
  EXPECT_EQ(lines[1]["text"], "line\nbreak");
  EXPECT_EQ(lines[2]["event"], "c");
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
}

TEST_F(EventLogTest, ConcurrentWritersNeverInterleaveLines) {
  std::string path = dir_ + "/shared.jsonl";
  auto a = EventLog::Open(path), b = EventLog::Open(path);
  ASSERT_TRUE(a.ok() && b.ok());
  std::string big(3000, 'x');
  auto write = [&](EventLog& log, const char* who) {
    for (int i = 0; i < 200; ++i)
      ASSERT_TRUE(log.Append({{"event", who}, {"i", i}, {"pad", big}}, false).ok());
  };
  std::thread t1(write, std::ref(**a), "a"), t2(write, std::ref(**b), "b");
  t1.join();
  t2.join();
  EXPECT_EQ(ReadEventLog(path).size(), 400u);
}

TEST_F(EventLogTest, OpenErrorsNameThePath) {
  auto log = EventLog::Open(dir_ + "/missing/dir/events.jsonl");
  ASSERT_FALSE(log.ok());
  EXPECT_THAT(log.error().message, HasSubstr(dir_ + "/missing/dir/events.jsonl"));
  EXPECT_THAT(log.error().message, HasSubstr("--event-log"));
  EXPECT_TRUE(ReadEventLog(dir_ + "/none.jsonl").empty());
}

TEST(ProgressLogFilter, FirstReportThenAtMostOnePerInterval) {
  ProgressLogFilter f(30);
  EXPECT_TRUE(f.ShouldLog(100));
  EXPECT_FALSE(f.ShouldLog(101));
  EXPECT_FALSE(f.ShouldLog(129.9));
  EXPECT_TRUE(f.ShouldLog(130));
  f.Reset();  // a failure or restart
  EXPECT_TRUE(f.ShouldLog(131));
  EXPECT_FALSE(f.ShouldLog(132));
}

}  // namespace
}  // namespace strun::daemon
