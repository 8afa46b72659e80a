// strund's TensorBoard events (tensorboard_events.h), read back by tests/tools/read_tfevents.py,
// a reader that shares no code with strun (its own framing, CRC-32C and protobuf decoding).
#include "strun/daemon/tensorboard_events.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>

#include "strun/daemon/event_log.h"
#include "strun/daemon/options.h"

namespace strun::daemon {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

class TensorBoardEventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/strund-tensorboard-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The reader's JSON for every events file under `path`, in name order.
  Json Read(const std::string& path) {
    const std::string cmd = "/usr/bin/python3 " READ_TFEVENTS " " + path;
    FILE* p = popen(cmd.c_str(), "r");
    EXPECT_NE(p, nullptr);
    std::string out;
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    EXPECT_EQ(pclose(p), 0) << cmd;
    return Json::parse(out);
  }

  Json Line(const std::string& event, const Json& fields, double time) {
    return MakeEventLine(event, fields, EventContext{"4242", 0, 1}, time);
  }

  std::string dir_;
};

TEST_F(TensorBoardEventsTest, EventsAsTextAndTotalsAsScalarsAtTheTrainingStep) {
  auto tb = TensorBoardEvents::Open(dir_, "4242", 0, 1000);
  ASSERT_TRUE(tb) << tb.error().message;
  EXPECT_THAT(
      (*tb)->path(),
      MatchesRegex(dir_ + "/strund_4242/events\\.out\\.tfevents\\.1000\\..+\\.[0-9]+\\.strund"));
  AccountingSummary totals;
  ASSERT_TRUE((*tb)->Add(Line("strund_start", {{"nodes", 2}}, 1000), totals));
  totals.high_water_step = 7;
  ASSERT_TRUE((*tb)->Add(Line("progress", {{"step", 7}}, 1001), totals));  // counted, not copied
  totals.restarts = 1;
  totals.faults = 1;
  ASSERT_TRUE((*tb)->Add(Line("failure", {{"rank", 1}, {"exit_code", 1}}, 1002), totals));
  totals.high_water_step = 9;
  totals.lost_s = 12.5;
  totals.goodput = 0.75;
  ASSERT_TRUE((*tb)->Add(Line("recovered", {{"step", 9}, {"time_lost_s", 12.5}}, 1003), totals));

  const Json files = Read(dir_);
  ASSERT_EQ(files.size(), 1u);
  const Json& events = files[0]["events"];
  ASSERT_EQ(events.size(), 7u);  // file_version, then text + scalars for 3 events
  EXPECT_EQ(events[0]["file_version"], "brain.Event:2");
  EXPECT_EQ(events[1]["step"], 1);
  EXPECT_THAT(events[1]["texts"]["strund/events"].get<std::string>(),
              HasSubstr("\"event\":\"strund_start\""));
  EXPECT_EQ(events[2]["step"], 0);
  EXPECT_EQ(events[2]["scalars"]["strund/restarts"], 0);
  EXPECT_EQ(events[3]["step"], 3);  // the failure is the job's 3rd line
  EXPECT_THAT(events[3]["texts"]["strund/events"].get<std::string>(), HasSubstr("**failure**"));
  EXPECT_EQ(events[4]["step"], 7);
  EXPECT_EQ(events[4]["scalars"]["strund/restarts"], 1);
  EXPECT_EQ(events[4]["scalars"]["strund/faults"], 1);
  EXPECT_EQ(events[6]["step"], 9);
  EXPECT_EQ(events[6]["scalars"]["strund/time_lost_s"], 12.5);
  EXPECT_EQ(events[6]["scalars"]["strund/goodput"], 0.75);
  EXPECT_DOUBLE_EQ(events[6]["wall_time"].get<double>(), 1003);
}

TEST_F(TensorBoardEventsTest, ARequeuedStrundAddsAFileAndContinuesTheLineNumbers) {
  {
    auto tb = TensorBoardEvents::Open(dir_, "4242", 0, 1000);
    ASSERT_TRUE(tb);
    ASSERT_TRUE((*tb)->Add(Line("strund_start", {}, 1000), AccountingSummary{}));
  }
  auto tb = TensorBoardEvents::Open(dir_, "4242", 5, 2000);
  ASSERT_TRUE(tb);
  AccountingSummary totals;
  totals.requeues = 1;
  ASSERT_TRUE((*tb)->Add(Line("strund_start", {}, 2000), totals));
  const Json files = Read(dir_ + "/strund_4242");
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[1]["events"][1]["step"], 6);
  EXPECT_EQ(files[1]["events"][2]["scalars"]["strund/requeues"], 1);
}

TEST_F(TensorBoardEventsTest, AFolderThatCannotBeCreatedIsNamed) {
  const std::string file = dir_ + "/file";
  std::fclose(std::fopen(file.c_str(), "w"));
  auto tb = TensorBoardEvents::Open(file, "4242", 0, 1000);
  ASSERT_FALSE(tb);
  EXPECT_THAT(tb.error().message, HasSubstr(file + "/strund_4242"));
}

TEST(TensorBoardOptions, TensorBoardDirIsAnOption) {
  auto o = ParseDaemonCommandLine({"--tensorboard-dir", "/tmp/tb", "--", "srun", "strun", "x"});
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->tensorboard_dir, "/tmp/tb");
}

}  // namespace
}  // namespace strun::daemon
