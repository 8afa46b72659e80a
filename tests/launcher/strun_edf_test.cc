// strun --environment: the workers run in the EDF's container, which strun creates itself (no
// SPANK plugin), and nothing stays mounted afterwards. Builds a tiny squashfs image with
// tests/edf/make-test-rootfs.sh; skipped without root, /dev/fuse, squashfuse or mksquashfs.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <vector>

#include "launcher_test_util.h"

namespace strun::launcher {
namespace {

#ifdef STRUN_TEST_HAVE_EDF

std::string Sh(const std::string& cmd) {
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
  }
  return out;
}

// The container's mounts: the squashfs image (FUSE), the overlay, the staging directory.
std::set<std::string> ContainerMounts() {
  std::set<std::string> found;
  std::string line;
  std::istringstream in(Slurp("/proc/mounts"));
  while (std::getline(in, line))
    if (line.find("squashfuse") != std::string::npos || line.find("overlay") != std::string::npos ||
        line.find("/run/strun") != std::string::npos)
      found.insert(line);
  return found;
}

// Live processes whose parent is this test process: with PR_SET_CHILD_SUBREAPER set, whatever
// strun leaves behind (the container's keeper, squashfuse) is reparented here.
std::vector<std::string> LeftoverChildren() {
  std::vector<std::string> left;
  DIR* d = opendir("/proc");
  if (!d) return left;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string stat = Slurp(std::string("/proc/") + e->d_name + "/stat");
    auto close_paren = stat.rfind(')');
    if (close_paren == std::string::npos || close_paren + 4 >= stat.size()) continue;
    std::istringstream rest(stat.substr(close_paren + 2));
    std::string state;
    long ppid = 0;
    rest >> state >> ppid;
    if (state == "Z") {
      if (ppid == getpid()) waitpid(std::atoi(e->d_name), nullptr, WNOHANG);
      continue;
    }
    if (ppid == getpid()) left.push_back(stat.substr(0, close_paren + 1));
  }
  closedir(d);
  return left;
}

class StrunEdf : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) != 0 ||
        Sh("command -v squashfuse").empty() || Sh("command -v mksquashfs").empty())
      GTEST_SKIP() << "needs root, /dev/fuse, squashfuse and mksquashfs";
    chmod(d_.path().c_str(), 0755);
    const std::string script = std::string(STRUN_EDF_TEST_SOURCE) + "/make-test-rootfs.sh";
    ASSERT_EQ(
        std::system((script + " " + d_.path() + "/rootfs && mksquashfs " + d_.path() + "/rootfs " +
                     d_.path() + "/image.sqsh -noappend -no-progress -quiet >/dev/null")
                        .c_str()),
        0);
    // Containers (docker's default profile, say) may forbid mount namespaces or FUSE mounts.
    const std::string probe = "unshare --mount --propagation private sh -c 'mkdir -p " + d_.path() +
                              "/probe && squashfuse " + d_.path() + "/image.sqsh " + d_.path() +
                              "/probe && cat " + d_.path() + "/probe/hello.txt && umount " +
                              d_.path() + "/probe' 2>&1";
    if (Sh(probe).find("hello from the image") == std::string::npos)
      GTEST_SKIP() << "this machine does not allow a squashfuse mount in a mount namespace";
    std::ofstream(d_.path() + "/x.toml")
        << "image = \"./image.sqsh\"\n[env]\nEDF_VAR = \"from-edf\"\n";
  }
  TempDir d_;
};

TEST_F(StrunEdf, WorkersRunInTheContainerAndNothingStaysMounted) {
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  const auto mounts_before = ContainerMounts();
  auto r = RunStrun(
      {"--standalone", "--nproc-per-node=2", "--no-python", "--environment=./x.toml", "sh", "-c",
       "cat /hello.txt; echo EDF_VAR=$EDF_VAR rank=$RANK; test ! -e /x.toml && echo no-host-files"},
      d_);
  EXPECT_EQ(r.rc, 0) << r.out << r.err;
  for (int i = 0; i < 2; ++i) {
    const std::string p = "[default" + std::to_string(i) + "]:";
    EXPECT_NE(r.out.find(p + "hello from the image"), std::string::npos) << r.out << r.err;
    EXPECT_NE(r.out.find(p + "EDF_VAR=from-edf rank=" + std::to_string(i)), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find(p + "no-host-files"), std::string::npos) << r.out;
  }
  // Nothing left: no new mount here, and no process of strun's (keeper, squashfuse) reparented.
  std::vector<std::string> new_mounts;
  for (const auto& m : ContainerMounts())
    if (!mounts_before.count(m)) new_mounts.push_back(m);
  EXPECT_TRUE(new_mounts.empty()) << new_mounts.front();
  std::vector<std::string> left;
  for (int i = 0; i < 50 && !(left = LeftoverChildren()).empty(); ++i) usleep(100000);
  EXPECT_TRUE(left.empty()) << left.front();
  prctl(PR_SET_CHILD_SUBREAPER, 0);
}

TEST_F(StrunEdf, EnvironmentVariableWorksLikeTheFlag) {
  auto r = RunStrun({"--standalone", "--no-python", "sh", "-c", "cat /hello.txt"}, d_,
                    {{"STRUN_ENVIRONMENT", "./x.toml"}});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("[default0]:hello from the image"), std::string::npos) << r.out << r.err;
}

TEST(StrunEdfErrors, AMissingEdfIsAClearErrorBeforeAnyWorkerStarts) {
  TempDir d;
  auto r = RunStrun(
      {"--standalone", "--no-python", "--environment=./missing.toml", "sh", "-c", "echo ran"}, d);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("missing.toml"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("ran"), std::string::npos) << r.out;
}

#else

TEST(StrunEdfErrors, WithoutEdfSupportTheFlagIsAClearError) {
  TempDir d;
  auto r = RunStrun(
      {"--standalone", "--no-python", "--environment=./x.toml", "sh", "-c", "echo ran"}, d);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("built without EDF support"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("ran"), std::string::npos) << r.out;
}

#endif

}  // namespace
}  // namespace strun::launcher
