// The container runtime on a real squashfs image: files, writability, mounts, environment,
// workdir, hooks, entrypoint, cleanup. Runs as root; tasks run as an unprivileged test user.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "runtime_fixture.h"
#include "strun/edf/launch.h"
#include "strun/edf/validate.h"

namespace strun::edf::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::unique_ptr<Container> MustCreate(const Edf& edf, const RuntimeOptions& opts) {
  auto c = Container::Create(edf, opts);
  EXPECT_TRUE(c.ok()) << c.error().message;
  return c.ok() ? std::move(c.value()) : nullptr;
}

TEST_F(RuntimeTest, TasksSeeTheImageAsTheirUserWithNoNewPrivileges) {
  auto c = MustCreate(LoadEdf(""), Opts());
  ASSERT_TRUE(c);
  auto r = RunSh(*c, "cat /hello.txt; id -u; grep NoNewPrivs /proc/self/status; id -un");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("hello from the image"));
  EXPECT_THAT(r.output, HasSubstr(std::to_string(user_uid_) + "\n"));
  EXPECT_THAT(r.output, HasSubstr("NoNewPrivs:\t1"));
  EXPECT_THAT(r.output, HasSubstr(std::string(kTestUser) + "\n"));  // passwd entry added
}

TEST_F(RuntimeTest, SystemMountsArePresent) {
  auto c = MustCreate(LoadEdf(""), Opts());
  ASSERT_TRUE(c);
  auto r = RunSh(*c,
                 "cat /proc/self/mounts; ls /dev; echo x > /dev/null && echo devnull-ok; "
                 "touch /tmp/t && echo tmp-ok; ls /sys/kernel >/dev/null && echo sys-ok; cat "
                 "/etc/hosts >/dev/null && echo hosts-ok");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("proc /proc proc"));
  EXPECT_THAT(r.output, HasSubstr("tmpfs /tmp tmpfs"));
  EXPECT_THAT(r.output, HasSubstr("tmpfs /dev tmpfs"));
  EXPECT_THAT(r.output, HasSubstr("devpts /dev/pts devpts"));
  for (const char* s : {"devnull-ok", "tmp-ok", "sys-ok", "hosts-ok", "urandom", "shm"}) {
    EXPECT_THAT(r.output, HasSubstr(s));
  }
  // The host's root is gone: only the container's mounts are visible.
  EXPECT_THAT(r.output, Not(HasSubstr(dir_->path())));
}

TEST_F(RuntimeTest, WritableRootKeepsWritesInMemory) {
  auto c = MustCreate(LoadEdf("writable = true\n"), Opts("root"));
  ASSERT_TRUE(c);
  auto r = RunSh(
      *c,
      "echo new > /written.txt && cat /written.txt && echo more >> /hello.txt && cat /hello.txt");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("new\nhello from the image\nmore"));
  EXPECT_FALSE(std::filesystem::exists(*dir_ / "rootfs/written.txt"));
}

TEST_F(RuntimeTest, ReadOnlyRootRejectsWritesButTmpWorks) {
  auto c = MustCreate(LoadEdf("writable = false\n"), Opts("root"));
  ASSERT_TRUE(c);
  auto r = RunSh(*c, "echo new > /written.txt");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("Read-only file system"));
  EXPECT_EQ(RunSh(*c, "echo x > /tmp/x && cat /tmp/x").exit_code, 0);
  EXPECT_THAT(RunSh(*c, "grep ' / ' /proc/self/mounts").output, HasSubstr("overlay / overlay ro"));
}

TEST_F(RuntimeTest, BindMountsHonourFlags) {
  WriteFile(*work_ / "rw/file.txt", "host rw\n");
  WriteFile(*work_ / "ro/file.txt", "host ro\n");
  Sh("chown -R " + std::string(kTestUser) + " " + *work_ / "rw");
  auto c = MustCreate(LoadEdf("mounts = [\"./rw:/mnt/rw\", \"./ro:/mnt/ro:ro+nosuid\", "
                              "\"./ro/file.txt:/single.txt:ro\"]\n"),
                      Opts());
  ASSERT_TRUE(c);
  auto r =
      RunSh(*c,
            "cat /mnt/rw/file.txt /mnt/ro/file.txt /single.txt; echo changed > /mnt/rw/new.txt; "
            "echo bad > /mnt/ro/new.txt; grep /mnt/ro /proc/self/mounts");
  EXPECT_THAT(r.output, HasSubstr("host rw\nhost ro\nhost ro\n"));
  EXPECT_THAT(r.output, HasSubstr("Read-only file system"));
  EXPECT_THAT(r.output, HasSubstr(" /mnt/ro "));
  EXPECT_THAT(r.output, HasSubstr("ro,nosuid"));
  EXPECT_EQ(ReadFile(*work_ / "rw/new.txt"), "changed\n");
  EXPECT_FALSE(std::filesystem::exists(*work_ / "ro/new.txt"));
}

TEST_F(RuntimeTest, SquashfsMount) {
  auto c = MustCreate(LoadEdf("mounts = [\"" + *dir_ / "data.sqsh" + ":/data:sqsh\"]\n"), Opts());
  ASSERT_TRUE(c);
  auto r = RunSh(*c, "cat /data/from-sqsh.txt; ls /data; echo x > /data/nope");
  EXPECT_THAT(r.output, HasSubstr("from the data squashfs"));
  EXPECT_THAT(r.output, Not(HasSubstr("in-image.txt")));  // the image's /data is covered
  EXPECT_THAT(r.output, HasSubstr("Read-only file system"));
}

TEST_F(RuntimeTest, EnvironmentPrecedence) {
  Edf edf = LoadEdf(
      "[env]\nSHARED = \"edf\"\nFROM_EDF = \"edf\"\nHOST_UNSET = \"\"\nPMIX_MCA_psec = "
      "\"native\"\n");
  auto c = MustCreate(edf, Opts());
  ASSERT_TRUE(c);
  EnvMap host = {{"PATH", "/usr/bin"},   {"SHARED", "host"},     {"HOST_ONLY", "host"},
                 {"HOST_UNSET", "host"}, {"FROM_IMAGE", "host"}, {"SLURM_PROCID", "3"}};
  EnvMap env = c->TaskEnvironment(host);
  EXPECT_EQ(env["SHARED"], "edf");
  EXPECT_EQ(env["FROM_EDF"], "edf");
  EXPECT_EQ(env["FROM_IMAGE"], "image");
  EXPECT_EQ(env["HOST_ONLY"], "host");
  EXPECT_EQ(env["PATH"], "/usr/local/bin:/bin");
  EXPECT_EQ(env["SLURM_PROCID"], "3");  // the image's value never replaces Slurm's
  EXPECT_EQ(env["PMIX_MCA_psec"], "native");
  EXPECT_EQ(env.count("HOST_UNSET"), 0u);
  auto r = RunIn(*c, {"/bin/env"}, env);
  EXPECT_THAT(r.output, HasSubstr("SHARED=edf\n"));
  EXPECT_THAT(r.output, Not(HasSubstr("HOST_UNSET")));
}

TEST_F(RuntimeTest, WorkdirFromEdfElseImage) {
  auto image_default = MustCreate(LoadEdf(""), Opts());
  ASSERT_TRUE(image_default);
  EXPECT_EQ(image_default->workdir(), "/workspace");
  EXPECT_EQ(RunSh(*image_default, "pwd").output, "/workspace\n");
  auto from_edf = MustCreate(LoadEdf("workdir = \"/data\"\n"), Opts());
  ASSERT_TRUE(from_edf);
  EXPECT_EQ(RunSh(*from_edf, "pwd").output, "/data\n");
  auto missing = MustCreate(LoadEdf("workdir = \"/does/not/exist\"\n"), Opts());
  ASSERT_TRUE(missing);
  auto r = RunSh(*missing, "pwd");
  EXPECT_EQ(r.exit_code, 125);
  EXPECT_THAT(r.output, HasSubstr("workdir /does/not/exist"));
}

TEST_F(RuntimeTest, EntrypointExportsEnvironment) {
  auto c = MustCreate(LoadEdf("entrypoint = true\n"), Opts());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->TaskEnvironment({})["EP_VAR"], "from-entrypoint");
  auto without = MustCreate(LoadEdf(""), Opts());
  ASSERT_TRUE(without);
  EXPECT_EQ(without->TaskEnvironment({}).count("EP_VAR"), 0u);
}

TEST_F(RuntimeTest, HooksRunBeforeEdfMountsWithAnnotations) {
  std::string hooks = *work_ / "hooks";
  WriteFile(hooks + "/10-record.sh",
            "#!/bin/sh\n"
            "echo \"$OCI_ANNOTATION_com__example__enabled $(id -u)\" > "
            "\"$STRUN_CONTAINER_ROOT/hook.txt\"\n"
            "ls \"$STRUN_CONTAINER_ROOT/data\" >> \"$STRUN_CONTAINER_ROOT/hook.txt\"\n");
  ::chmod((hooks + "/10-record.sh").c_str(), 0755);
  ::chmod(hooks.c_str(), 0755);
  RuntimeOptions opts = Opts();
  opts.hooks_dir = hooks;
  auto c = MustCreate(LoadEdf("mounts = [\"" + *dir_ / "data.sqsh" +
                              ":/data:sqsh\"]\n"
                              "[annotations]\ncom.example.enabled = \"yes\"\n"),
                      opts);
  ASSERT_TRUE(c);
  auto r = RunSh(*c, "cat /hook.txt");
  EXPECT_EQ(r.output, "yes 0\nin-image.txt\n");  // as root, and the sqsh mount was not there yet

  // A hooks directory that others can write to is refused.
  ::chmod(hooks.c_str(), 0777);
  auto refused = Container::Create(LoadEdf(""), opts);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.error().message,
              HasSubstr("must be owned by root and not writable by others"));
}

TEST_F(RuntimeTest, FailingHookFailsTheContainerAndCleansUp) {
  std::string hooks = *work_ / "hooks";
  WriteFile(hooks + "/50-fail", "#!/bin/sh\nexit 3\n");
  ::chmod((hooks + "/50-fail").c_str(), 0755);
  RuntimeOptions opts = Opts();
  opts.hooks_dir = hooks;
  auto c = Container::Create(LoadEdf(""), opts);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("50-fail failed (exit 3)"));
  EXPECT_THAT(ProcessesMentioning(opts.state_dir), ::testing::IsEmpty());
  EXPECT_TRUE(std::filesystem::is_empty(opts.state_dir));
}

TEST_F(RuntimeTest, MountTargetsCannotEscapeThroughSymlinks) {
  // /escape in the image is a symlink to /etc: the mount lands in the container's /etc.
  std::string marker = "strun-edf-escape-" + std::to_string(::getpid());
  WriteFile(*work_ / "src/f.txt", "inside\n");
  auto c = MustCreate(LoadEdf("mounts = [\"./src:/escape/" + marker + "\"]\n"), Opts("root"));
  ASSERT_TRUE(c);
  EXPECT_FALSE(std::filesystem::exists("/etc/" + marker));
  EXPECT_EQ(RunSh(*c, "cat /etc/" + marker + "/f.txt").output, "inside\n");
}

TEST_F(RuntimeTest, NothingIsLeftBehind) {
  RuntimeOptions opts = Opts();
  pid_t keeper;
  {
    auto c = MustCreate(LoadEdf("mounts = [\"" + *dir_ / "data.sqsh" + ":/data:sqsh\"]\n"), opts);
    ASSERT_TRUE(c);
    keeper = c->keeper_pid();
    EXPECT_GE(ProcessesMentioning("squashfuse").size(), 2u);
    EXPECT_EQ(RunSh(*c, "cat /hello.txt").exit_code, 0);
    ASSERT_TRUE(c->Destroy().ok());
  }
  EXPECT_NE(::kill(keeper, 0), 0);
  EXPECT_THAT(ProcessesMentioning(opts.state_dir), ::testing::IsEmpty());
  for (const auto& p : ProcessesMentioning("squashfuse")) {
    EXPECT_THAT(p, Not(HasSubstr(dir_->path())));
  }
  EXPECT_THAT(ReadFile("/proc/self/mounts"), Not(HasSubstr(opts.state_dir)));
  EXPECT_TRUE(std::filesystem::is_empty(opts.state_dir));
}

TEST_F(RuntimeTest, PrepareEnvironmentForTheLauncher) {
  WriteFile(*work_ / "launcher.toml",
            "image = \"" + *dir_ / "image.sqsh" + "\"\nbogus = 1\n[env]\nL = \"1\"\n");
  std::vector<std::string> warnings;
  auto c = PrepareEnvironment(*work_ / "launcher.toml", &warnings);
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_TRUE(*c);
  EXPECT_THAT(warnings, ::testing::ElementsAre(HasSubstr("unknown key 'bogus'")));
  EnvMap env = (*c)->TaskEnvironment({{"PATH", "/usr/bin"}});
  EXPECT_EQ(env["L"], "1");
  EXPECT_EQ(RunIn(**c, {"/bin/cat", "/hello.txt"}, env).output, "hello from the image\n");
  ASSERT_TRUE((*c)->Destroy().ok());
  ::setenv(kContainerEnvVar, "/x.toml", 1);
  auto inside = PrepareEnvironment(*work_ / "launcher.toml");
  ::unsetenv(kContainerEnvVar);
  ASSERT_TRUE(inside.ok());
  EXPECT_FALSE(*inside);
  auto missing = PrepareEnvironment("./definitely-missing.toml");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message, HasSubstr("definitely-missing.toml"));
}

TEST_F(RuntimeTest, RegistryImageFailsWithImportHint) {
  WriteFile(*work_ / "reg.toml", "image = \"nvcr.io#nvidia/pytorch:24.04-py3\"\n");
  auto e = LoadEnvironment("./reg.toml", Options(work_->path()));
  ASSERT_TRUE(e.ok());
  auto c = Container::Create(*e, Opts());
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.error().message, HasSubstr("nvidia+pytorch+24.04-py3.sqsh"));
}

}  // namespace
}  // namespace strun::edf::testing
