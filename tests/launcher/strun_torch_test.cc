// strun with real PyTorch workers (Debian's python3-torch at /usr/bin/python3): gloo through
// env://, all-reduce, the torchrun environment checked by scripts/allreduce_check.py.
#include <gtest/gtest.h>

#include "launcher_test_util.h"

namespace strun::launcher {
namespace {

const std::string kScript = std::string(STRUN_TEST_SCRIPTS) + "/allreduce_check.py";

bool HaveTorch() {
  static int have = -1;
  if (have < 0)
    have = system("/usr/bin/python3 -c 'import torch.distributed' >/dev/null 2>&1") == 0;
  return have == 1;
}

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

TEST(StrunTorch, StandaloneFourWorkersAllReduce) {
  if (!HaveTorch()) GTEST_SKIP() << "/usr/bin/python3 has no torch";
  TempDir d;
  auto r = RunStrun({"--standalone", "--nproc-per-node=4", kScript, "--expect-world", "4",
                     "--expect-local-world", "4"},
                    d, {{"STRUN_PYTHON", "/usr/bin/python3"}}, 300);
  EXPECT_EQ(r.rc, 0) << r.out << r.err;
  for (int i = 0; i < 4; ++i)
    EXPECT_NE(r.out.find("[default" + std::to_string(i) +
                         "]:ALLREDUCE_OK rank=" + std::to_string(i) + " world=4"),
              std::string::npos)
        << r.out << r.err;
}

TEST(StrunTorch, FailingWorkerIsRestartedOnce) {
  if (!HaveTorch()) GTEST_SKIP() << "/usr/bin/python3 has no torch";
  TempDir d;
  // PATH resolution: /usr/bin first so that `python3` is the one with torch.
  std::string path = "/usr/bin:" + std::string(getenv("PATH") ? getenv("PATH") : "");
  auto r = RunStrun({"--nproc-per-node=2", "--max-restarts=1", kScript, "--fail-once-rank", "1",
                     "--expect-restarts", "1"},
                    d, {{"PATH", path}}, 300);
  EXPECT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_EQ(Count(r.out, "ALLREDUCE_OK"), 2) << r.out << r.err;
  EXPECT_NE(r.out.find("restarts=1"), std::string::npos);
  EXPECT_NE(r.err.find("rank 1 failing once on purpose"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace strun::launcher
