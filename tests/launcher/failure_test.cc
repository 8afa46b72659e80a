// torchrun's error.json contract and the failure summary.
#include "strun/launcher/failure.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace strun::launcher {
namespace {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/strun_failure_test_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { (void)!system(("rm -rf " + path_).c_str()); }
  std::string File(const std::string& name, const std::string& text) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ErrorFile, RecordFormat) {
  TempDir d;
  std::string p = d.File(
      "error.json",
      R"({"message": {"message": "RuntimeError: boom", "extraInfo": {"py_callstack": "Traceback...\nRuntimeError: boom", "timestamp": "1700000000"}}})");
  WorkerFailure f;
  f.exitcode = 1;
  ReadErrorFile(p, 1800000000.5, f);
  EXPECT_EQ(f.error_file, p);
  EXPECT_EQ(f.message, "Traceback...\nRuntimeError: boom");
  EXPECT_DOUBLE_EQ(f.timestamp, 1700000000);
  EXPECT_FALSE(f.error_data.empty());
}

TEST(ErrorFile, StringMessageFormat) {
  TempDir d;
  std::string p = d.File("error.json", R"({"message": "plain", "timestamp": 1600000000})");
  WorkerFailure f;
  ReadErrorFile(p, 1.0, f);
  EXPECT_EQ(f.message, "plain");
  EXPECT_DOUBLE_EQ(f.timestamp, 1600000000);
}

TEST(ErrorFile, MissingOrMalformed) {
  TempDir d;
  WorkerFailure f;
  f.exitcode = -9;
  f.pid = 42;
  ReadErrorFile(d.path() + "/none.json", 123.0, f);
  EXPECT_EQ(f.error_file, "<N/A>");
  EXPECT_EQ(f.message, "Signal 9 (SIGKILL) received by PID 42");
  EXPECT_DOUBLE_EQ(f.timestamp, 123.0);
  WorkerFailure g;
  g.exitcode = 2;
  ReadErrorFile(d.File("bad.json", "{not json"), 5.0, g);
  EXPECT_EQ(g.error_file, "<N/A>");
  EXPECT_NE(g.message.find("pytorch.org/docs/stable/elastic/errors.html"), std::string::npos);
  EXPECT_EQ(g.ShellExitCode(), 2);
  EXPECT_EQ(f.ShellExitCode(), 137);
}

TEST(ErrorFile, RootCauseIsEarliest) {
  std::vector<WorkerFailure> fs(3);
  fs[0].rank = 5;
  fs[0].timestamp = 30;
  fs[1].rank = 2;
  fs[1].timestamp = 10;
  fs[2].rank = 1;
  fs[2].timestamp = 10;
  EXPECT_EQ(RootCause(fs).rank, 1);  // tie: lowest rank
}

TEST(ErrorFile, ParentErrorFileGetsErrorCode) {
  TempDir d;
  WorkerFailure f;
  f.exitcode = -11;
  ReadErrorFile(
      d.File("child.json", R"({"message": {"message": "x", "extraInfo": {"timestamp": "1"}}})"), 0,
      f);
  std::string parent = d.path() + "/parent.json";
  d.File("parent.json", "old contents");
  ASSERT_TRUE(WriteParentErrorFile(parent, f).ok());
  auto j = nlohmann::json::parse(Slurp(parent));
  EXPECT_EQ(j["message"]["errorCode"], -11);
  EXPECT_EQ(j["message"]["message"], "x");
  // No error file from the worker: nothing is written (as torchrun).
  WorkerFailure none;
  none.exitcode = 1;
  std::string other = d.path() + "/other.json";
  ASSERT_TRUE(WriteParentErrorFile(other, none).ok());
  EXPECT_NE(access(other.c_str(), F_OK), 0);
}

TEST(ErrorFile, JsonRoundTripAndSummary) {
  WorkerFailure f;
  f.rank = 3;
  f.local_rank = 1;
  f.node = "nid002";
  f.pid = 99;
  f.exitcode = -SIGSEGV;
  f.timestamp = 1700000000.25;
  f.error_file = "<N/A>";
  f.message = "Signal 11 (SIGSEGV) received by PID 99";
  f.tail = {"step 10", "Segmentation fault"};
  WorkerFailure g = WorkerFailure::FromJson(nlohmann::json::parse(f.ToJson().dump()));
  EXPECT_EQ(g.rank, 3);
  EXPECT_EQ(g.node, "nid002");
  EXPECT_EQ(g.exitcode, -SIGSEGV);
  EXPECT_EQ(g.tail, f.tail);
  EXPECT_EQ(g.ShellExitCode(), 139);
  WorkerFailure other;
  other.rank = 0;
  other.node = "nid001";
  other.exitcode = 1;
  std::string s = FormatFailureSummary("train.py FAILED", g, {other});
  EXPECT_NE(s.find("Root Cause (first observed failure):"), std::string::npos);
  EXPECT_NE(s.find("host      : nid002"), std::string::npos);
  EXPECT_NE(s.find("rank      : 3 (local_rank: 1)"), std::string::npos);
  EXPECT_NE(s.find("exitcode  : -11 (SIGSEGV)"), std::string::npos);
  EXPECT_NE(s.find("    Segmentation fault"), std::string::npos);
  EXPECT_NE(s.find("rank 0 (local_rank 0) on nid001 exited with code 1"), std::string::npos);
  EXPECT_EQ(DescribeFailure(g),
            "rank 3 (local_rank 1) on nid002 was killed by SIGSEGV (exit code 139)");
}

TEST(Classify, KindsAndEvidence) {
  WorkerFailure f;
  f.exitcode = -6;
  f.tail = {
      "some output",
      "[rank3]:[E ProcessGroupNCCL.cpp:616] [Rank 3] Watchdog caught collective operation timeout: "
      "WorkNCCL(SeqNum=5, OpType=ALLREDUCE, Timeout(ms)=600000) ran for 600123 milliseconds"};
  ClassifyFailure(f);
  EXPECT_EQ(f.kind, "nccl_watchdog");
  EXPECT_NE(f.evidence.find("SIGABRT after: [rank3]"), std::string::npos) << f.evidence;

  WorkerFailure oom;
  oom.exitcode = 1;
  oom.message =
      "Traceback (most recent call last):\n  ...\ntorch.OutOfMemoryError: CUDA out of memory. "
      "Tried to allocate 2.00 GiB";
  ClassifyFailure(oom);
  EXPECT_EQ(oom.kind, "cuda_oom");
  EXPECT_NE(oom.evidence.find("Tried to allocate 2.00 GiB"), std::string::npos);

  WorkerFailure killed;
  killed.exitcode = -9;
  ClassifyFailure(killed);
  EXPECT_EQ(killed.kind, "signal");
  EXPECT_EQ(killed.evidence, "killed by SIGKILL");

  WorkerFailure plain;
  plain.exitcode = 3;
  ClassifyFailure(plain);
  EXPECT_EQ(plain.kind, "exit_code");
  EXPECT_EQ(plain.evidence, "exit code 3");

  WorkerFailure hang;  // set by the agent: kept
  hang.exitcode = -9;
  hang.kind = "hang";
  hang.evidence = "no progress report for 61.0 s";
  ClassifyFailure(hang);
  EXPECT_EQ(hang.kind, "hang");
  auto back = WorkerFailure::FromJson(hang.ToJson());
  EXPECT_EQ(back.kind, "hang");
  EXPECT_EQ(back.evidence, hang.evidence);
  EXPECT_NE(DescribeFailure(back).find("hung: no progress report"), std::string::npos);
}

}  // namespace
}  // namespace strun::launcher
