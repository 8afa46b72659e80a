// The runtime's security rules, each exercised for an unprivileged user: an EDF cannot reach
// what its user cannot reach on the host, device nodes and setuid binaries in an image stay inert,
// and one user's container cannot be joined by another.
#include <dirent.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

TEST_F(RuntimeTest, DeviceNodeFromTheImageCannotBeOpened) {
  // The image's /devs/null is a 666 node of the host's null device (MakeTestImage); a node of the
  // host's disk or kernel log would be as easy to make. Only /dev's nodes, the host's, open.
  for (const char* writable : {"false", "true"}) {
    auto c = Container::Create(LoadEdf(std::string("writable = ") + writable + "\n"), Opts());
    ASSERT_TRUE(c.ok()) << c.error().message;
    auto r = RunSh(**c,
                   "stat -c %F /devs/null; echo x > /devs/null && echo image-node-opened; "
                   "cat /devs/null && echo image-node-read; echo x > /dev/null && echo null-ok; "
                   ": < /dev/zero && : < /dev/urandom && : > /dev/full && echo nodes-ok");
    EXPECT_THAT(r.output, HasSubstr("character special file")) << "writable = " << writable;
    EXPECT_THAT(r.output, HasSubstr("/devs/null: Permission denied"));
    EXPECT_THAT(r.output, Not(HasSubstr("image-node-opened")));
    EXPECT_THAT(r.output, Not(HasSubstr("image-node-read")));
    EXPECT_THAT(r.output, HasSubstr("null-ok"));
    EXPECT_THAT(r.output, HasSubstr("nodes-ok"));
  }
}

// Runs `program` in the container as the user but, unlike a task, without no_new_privs: what the
// mount flags alone allow, should a path into the container ever miss no_new_privs.
RunResult RunWithoutNoNewPrivs(const Container& c, const UserIdentity& user,
                               const std::string& program) {
  int p[2];
  if (::pipe(p) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(p[1], 1);
    ::dup2(p[1], 2);
    if (!c.Join().ok() || !BecomeUser(user).ok()) ::_exit(125);
    const char* argv[] = {program.c_str(), "-u", nullptr};
    const char* envp[] = {"PATH=/bin", nullptr};
    ::execve(argv[0], const_cast<char* const*>(argv), const_cast<char* const*>(envp));
    ::_exit(127);
  }
  ::close(p[1]);
  return CollectChild(pid, p[0]);
}

TEST_F(RuntimeTest, SetuidBinaryGivesNoPrivilegesEvenWithoutNoNewPrivs) {
  // /bin/suid-id is setuid root in the image; /suid/id is a setuid-root binary of the host.
  std::filesystem::create_directories(*work_ / "suid");
  std::filesystem::copy_file("/usr/bin/id", *work_ / "suid/id");
  ::chmod((*work_ / "suid/id").c_str(), 04755);
  auto c = Container::Create(LoadEdf("mounts = [\"./suid:/suid\"]\n"), Opts());
  ASSERT_TRUE(c.ok()) << c.error().message;
  std::string uid = std::to_string(user_uid_) + "\n";
  EXPECT_EQ(RunSh(**c, "stat -c %A /bin/suid-id /suid/id").output, "-rwsr-xr-x\n-rwsr-xr-x\n");
  auto r = RunWithoutNoNewPrivs(**c, Opts().user, "/bin/suid-id");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, uid) << "a setuid binary from the image ran as root";
  r = RunWithoutNoNewPrivs(**c, Opts().user, "/suid/id");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, uid) << "a setuid binary from a bind mount ran as root";
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
