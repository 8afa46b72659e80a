// spank_strun.so on the local Slurm cluster: `srun --environment` runs every task in the EDF's
// container, a bad EDF fails at submission, a container that cannot be built on the node fails the
// step and the job, tasks run as the submitting user without capabilities and cannot open device
// nodes from the image, and nothing is left on the nodes afterwards.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "cluster/cluster_fixture.h"
#include "runtime_fixture.h"

namespace strun::edf::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kStateDir = "/run/strun-spank-test";

class SpankClusterTest : public strun::testing::ClusterTest {
 protected:
  static void SetUpTestSuite() {
    strun::testing::ClusterOptions options;
    options.nodes = 2;
    options.spank_lines = {std::string("required ") + STRUN_SPANK_PLUGIN +
                           " state_dir=" + kStateDir};
    StartCluster(options);
  }

  void SetUp() override {
    strun::testing::ClusterTest::SetUp();
    if (::access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "needs /dev/fuse";
    dir_ = cluster().shared_dir() + "/edf-" + std::to_string(::getpid());
    std::filesystem::create_directories(dir_);
    ::chmod(dir_.c_str(), 0755);
    ASSERT_TRUE(MakeTestImage(dir_ + "/rootfs", dir_ + "/image.sqsh"));
    WriteFile(dir_ + "/test.toml",
              "image = \"./image.sqsh\"\n[env]\nFROM_EDF = \"edf-${SPANK_TEST_VALUE}\"\n");
    WriteFile(dir_ + "/bad.toml",
              "image = \"./image.sqsh\"\nmounts = [\"/nonexistent/strun-src:/x\"]\n");
    // Passes the submit-side check (it starts with the squashfs magic), but squashfuse cannot
    // mount it on the node.
    WriteFile(dir_ + "/broken.sqsh", "hsqs" + std::string(4096, '\0'));
    ::chmod((dir_ + "/broken.sqsh").c_str(), 0644);
    WriteFile(dir_ + "/broken.toml", "image = \"./broken.sqsh\"\n");
  }

  // Runs `command` with sh as the unprivileged test user (created when missing), in dir_.
  strun::testing::CommandResult RunAsTestUser(const std::string& command) {
    EXPECT_NE(EnsureUser(kTestUser), 0u);
    WriteFile(dir_ + "/user-command.sh", "cd " + dir_ + "\n" + command + "\n");
    return cluster().Run(
        "su " + std::string(kTestUser) + " -s /bin/sh " + dir_ + "/user-command.sh",
        std::chrono::seconds(60));
  }

  void TearDown() override {
    strun::testing::ClusterTest::TearDown();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  std::string dir_;
};

TEST_F(SpankClusterTest, EveryTaskRunsInTheContainer) {
  auto r = cluster().Run(
      "cd " + dir_ +
          " && SPANK_TEST_VALUE=42 srun -N2 --ntasks-per-node=2 --environment=./test.toml "
          "sh -c 'echo task $SLURM_PROCID on $SLURMD_NODENAME: $(cat /hello.txt) $FROM_EDF "
          "$FROM_IMAGE $(pwd)'",
      std::chrono::seconds(60));
  ASSERT_TRUE(r.ok()) << r.Describe();
  for (int task = 0; task < 4; ++task) {
    std::string node = task < 2 ? "nid001" : "nid002";
    EXPECT_THAT(r.out, HasSubstr("task " + std::to_string(task) + " on " + node +
                                 ": hello from the image edf-42 image /workspace\n"));
  }
  EXPECT_THAT(r.err, Not(HasSubstr("error")));
  // srun returns when the tasks are done; slurmstepd then destroys the container.
  auto clean = [] {
    return (!std::filesystem::exists(kStateDir) || std::filesystem::is_empty(kStateDir)) &&
           ProcessesMentioning(kStateDir).empty();
  };
  for (int i = 0; i < 200 && !clean(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(!std::filesystem::exists(kStateDir) || std::filesystem::is_empty(kStateDir));
  EXPECT_THAT(ProcessesMentioning(kStateDir), ::testing::IsEmpty());
}

TEST_F(SpankClusterTest, BadEdfFailsAtSubmission) {
  auto r = cluster().Run("cd " + dir_ + " && srun -N1 --environment=./bad.toml echo launched",
                         std::chrono::seconds(60));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent/strun-src: No such file or directory"));
  EXPECT_THAT(r.out, Not(HasSubstr("launched")));
  auto s = cluster().Run("cd " + dir_ + " && sbatch --wrap true --environment=missing-edf",
                         std::chrono::seconds(60));
  EXPECT_NE(s.exit_code, 0);
  EXPECT_THAT(s.err, HasSubstr("EDF 'missing-edf' not found"));
}

TEST_F(SpankClusterTest, TasksRunAsTheSubmittingUserWithoutCapabilities) {
  uid_t uid = EnsureUser(kTestUser);
  ASSERT_NE(uid, 0u);
  auto r = cluster().Run(
      "cd " + dir_ + " && su " + kTestUser +
          " -s /bin/sh -c \"SPANK_TEST_VALUE=1 srun -N1 -n2 --environment=./test.toml "
          "sh -c 'id -u; grep -E \\\"^(CapEff|CapPrm|NoNewPrivs)\\\" /proc/self/status'\"",
      std::chrono::seconds(60));
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr(std::to_string(uid) + "\n"));
  EXPECT_THAT(r.out, HasSubstr("CapPrm:\t0000000000000000"));
  EXPECT_THAT(r.out, HasSubstr("CapEff:\t0000000000000000"));
  EXPECT_THAT(r.out, HasSubstr("NoNewPrivs:\t1"));
  EXPECT_THAT(r.out, Not(HasSubstr("CapEff:\t000001")));
}

TEST_F(SpankClusterTest, DeviceNodesFromTheImageCannotBeOpened) {
  // The image holds /devs/null, a 666 node of the host's null device that any user can put into a
  // squashfs (a node of the kernel log or of a disk would be as easy).
  auto r = RunAsTestUser(
      "SPANK_TEST_VALUE=1 srun -N1 --environment=./test.toml sh -c '"
      "id -u; stat -c %F /devs/null; echo x > /devs/null && echo image-node-opened; "
      "cat /devs/null && echo image-node-read; echo x > /dev/null && echo null-ok; "
      ": < /dev/zero && : < /dev/urandom && : > /dev/full && echo nodes-ok'");
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr(std::to_string(EnsureUser(kTestUser)) + "\n"));
  EXPECT_THAT(r.out, HasSubstr("character special file"));
  EXPECT_THAT(r.err, HasSubstr("/devs/null: Permission denied"));
  EXPECT_THAT(r.out, Not(HasSubstr("image-node-opened")));
  EXPECT_THAT(r.out, Not(HasSubstr("image-node-read")));
  EXPECT_THAT(r.out, HasSubstr("null-ok"));
  EXPECT_THAT(r.out, HasSubstr("nodes-ok"));
}

TEST_F(SpankClusterTest, ContainerFailureOnTheNodeFailsTheStepAndTheJob) {
  auto r = RunAsTestUser("srun -N1 -n2 --environment=./broken.toml echo launched");
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("squashfuse could not mount the image")) << r.Describe();
  EXPECT_THAT(r.out, Not(HasSubstr("launched")));

  // The same step in a batch job: the job fails with srun's exit code, and its output says why.
  std::filesystem::create_directories(dir_ + "/out");
  ::chown((dir_ + "/out").c_str(), EnsureUser(kTestUser), static_cast<gid_t>(-1));
  WriteFile(dir_ + "/broken.sbatch", "#!/bin/sh\nsrun --environment=./broken.toml echo launched\n");
  auto submit = RunAsTestUser("sbatch --parsable -N1 -o out/broken-%j.out broken.sbatch");
  ASSERT_TRUE(submit.ok()) << submit.Describe();
  long job = std::stol(submit.out);
  auto state = cluster().WaitForJob(job, std::chrono::seconds(60));
  ASSERT_TRUE(state.ok()) << state.error().message;
  EXPECT_EQ(*state, "FAILED");
  // No accounting storage in the local cluster: the controller's record has the exit code.
  auto show = cluster().Run("scontrol show job " + std::to_string(job), std::chrono::seconds(30));
  EXPECT_THAT(show.out, HasSubstr("ExitCode=1:0")) << show.Describe();
  std::string out = ReadFile(dir_ + "/out/broken-" + std::to_string(job) + ".out");
  EXPECT_THAT(out, HasSubstr("squashfuse could not mount the image"));
  EXPECT_THAT(out, Not(HasSubstr("launched")));
}

}  // namespace
}  // namespace strun::edf::testing
