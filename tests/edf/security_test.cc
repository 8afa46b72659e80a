// The runtime's security rules, each exercised for an unprivileged user: an EDF cannot reach
// what its user cannot reach on the host, and one user's container cannot be joined by another.
#include <dirent.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>

#include "runtime_fixture.h"
#include "strun/edf/validate.h"

namespace strun::edf::testing {
namespace {

using ::testing::HasSubstr;

TEST_F(RuntimeTest, MountSourceUnreachableByTheUserIsRefused) {
  // /work/private is 0700 root: the file below it is world-readable but unreachable for the user.
  WriteFile(*work_ / "private/secret/data.txt", "secret\n");
  ::chmod((*work_ / "private").c_str(), 0700);
  ::chmod((*work_ / "private/secret/data.txt").c_str(), 0644);
  Edf edf = LoadEdf("mounts = [\"./private/secret:/secret\"]\n");
  auto st = CheckLaunchable(edf, Opts().user);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.error().message,
              HasSubstr("private/secret: Permission denied (as uid " + std::to_string(user_uid_)));
  auto c = Container::Create(edf, Opts());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("Permission denied"));
  // The same EDF works for root, who can reach the directory.
  EXPECT_TRUE(CheckLaunchable(edf, Opts("root").user).ok());
}

TEST_F(RuntimeTest, SqshSourceUnreadableByTheUserIsRefused) {
  std::filesystem::copy_file(*dir_ / "data.sqsh", *work_ / "mine.sqsh");
  ::chmod((*work_ / "mine.sqsh").c_str(), 0600);
  Edf edf = LoadEdf("mounts = [\"./mine.sqsh:/data:sqsh\"]\n");
  auto c = Container::Create(edf, Opts());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("mine.sqsh: Permission denied"));
}

TEST_F(RuntimeTest, ImageUnreadableByTheUserIsRefused) {
  std::filesystem::copy_file(*dir_ / "image.sqsh", *work_ / "private.sqsh");
  ::chmod((*work_ / "private.sqsh").c_str(), 0600);
  WriteFile(*work_ / "p.toml", "image = \"./private.sqsh\"\n");
  auto edf = LoadEnvironment("./p.toml", Options(work_->path()));
  ASSERT_TRUE(edf.ok());
  auto st = CheckLaunchable(*edf, Opts().user);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.error().message, HasSubstr("private.sqsh: Permission denied"));
  auto c = Container::Create(*edf, Opts());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("Permission denied"));
}

TEST_F(RuntimeTest, TasksRunAsTheUserNeverAsRoot) {
  // Even a setuid-root binary in a mount cannot give the task root: no_new_privs.
  std::filesystem::create_directories(*work_ / "suid");
  std::filesystem::copy_file("/usr/bin/id", *work_ / "suid/id");
  ::chmod((*work_ / "suid/id").c_str(), 04755);
  auto c = Container::Create(LoadEdf("mounts = [\"./suid:/suid\"]\n"), Opts());
  ASSERT_TRUE(c.ok()) << c.error().message;
  auto r = RunIn(**c, {"/suid/id", "-u"}, {{"PATH", "/bin"}});
  EXPECT_EQ(r.output, std::to_string(user_uid_) + "\n");
}

TEST_F(RuntimeTest, AnotherUserCannotJoinTheContainer) {
  ASSERT_NE(other_uid_, 0u);
  auto c = Container::Create(LoadEdf(""), Opts());
  ASSERT_TRUE(c.ok()) << c.error().message;
  pid_t keeper = (*c)->keeper_pid();
  auto other = UserIdentity::ForUid(other_uid_);
  ASSERT_TRUE(other.ok());
  // As the other user: neither the namespace nor the staging directory is reachable.
  auto st = RunAsUser(*other, [&]() -> std::string {
    int fd = ::open(("/proc/" + std::to_string(keeper) + "/ns/mnt").c_str(), O_RDONLY);
    if (fd >= 0 && ::setns(fd, CLONE_NEWNS) == 0) return "joined another user's container";
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(*work_ / "state", ec)) {
      if (DIR* d = ::opendir(e.path().c_str())) {
        ::closedir(d);
        return "listed the staging directory " + e.path().string();
      }
    }
    return "";
  });
  EXPECT_TRUE(st.ok()) << st.error().message;
  // And so is the container's own user: only root (slurmstepd) joins, then drops privileges.
  st = RunAsUser(Opts().user, [&]() -> std::string {
    int fd = ::open(("/proc/" + std::to_string(keeper) + "/ns/mnt").c_str(), O_RDONLY);
    if (fd >= 0 && ::setns(fd, CLONE_NEWNS) == 0)
      return "an unprivileged process joined the container";
    return "";
  });
  EXPECT_TRUE(st.ok()) << st.error().message;
}

}  // namespace
}  // namespace strun::edf::testing
