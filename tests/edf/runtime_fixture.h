// A fixture for container runtime tests: a squashfs image built from the host's binaries
// (make-test-rootfs.sh), an unprivileged test user, and a way to run a command in a container.
// Tests skip themselves unless they run as root with squashfuse and /dev/fuse available.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "strun/edf/container.h"
#include "strun/edf/edf.h"
#include "test_util.h"

namespace strun::edf::testing {

inline constexpr const char* kTestUser = "strun-edf-user";
inline constexpr const char* kOtherUser = "strun-edf-other";

// The uid of `name`, created (without a home directory) when missing.
inline uid_t EnsureUser(const std::string& name) {
  if (struct passwd* pw = ::getpwnam(name.c_str())) return pw->pw_uid;
  std::string cmd = "useradd -M -s /bin/sh " + name + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) return 0;
  struct passwd* pw = ::getpwnam(name.c_str());
  return pw ? pw->pw_uid : 0;
}

inline std::string Sh(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = ::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

// Builds the test image `image` from make-test-rootfs.sh's tree in `rootfs`, with two entries that
// any user can put into a squashfs without root (mksquashfs pseudo definitions): /devs/null, a
// character device node 666 with the numbers of the host's /dev/null (1:3), and /bin/suid-id, a
// setuid-root copy of id. The runtime must leave both inert. Returns false when a command failed.
inline bool MakeTestImage(const std::string& rootfs, const std::string& image) {
  std::string script = std::string(STRUN_EDF_TEST_SOURCE) + "/make-test-rootfs.sh";
  std::string cmd = script + " " + rootfs + " && cp " + rootfs + "/bin/id " + rootfs +
                    "/bin/suid-id && mksquashfs " + rootfs + " " + image +
                    " -noappend -no-progress -quiet -p 'devs d 755 0 0' "
                    "-p 'devs/null c 666 0 0 1 3' -p 'bin/suid-id m 4755 0 0' >/dev/null";
  return std::system(cmd.c_str()) == 0 && ::chmod(image.c_str(), 0644) == 0;
}

struct RunResult {
  int exit_code = -1;
  std::string output;
};

// The output a forked child wrote to `read_fd` until it closed it, then its exit code (128 + the
// signal when killed). Closes `read_fd` and reaps `pid`.
inline RunResult CollectChild(pid_t pid, int read_fd) {
  RunResult r;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(read_fd, buf, sizeof buf)) > 0) r.output.append(buf, static_cast<size_t>(n));
  ::close(read_fd);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

// Runs argv in the container as its user (Container::Enter) with `env`; stdout and stderr captured.
inline RunResult RunIn(const Container& c, const std::vector<std::string>& argv,
                       const EnvMap& env) {
  int p[2];
  if (::pipe(p) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(p[1], 1);
    ::dup2(p[1], 2);
    ::close(p[0]);
    if (auto st = c.Enter(); !st.ok()) {
      std::fprintf(stderr, "enter: %s", st.error().message.c_str());
      ::_exit(125);
    }
    std::vector<std::string> envs;
    for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
    std::vector<char*> a, e;
    for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
    for (const auto& s : envs) e.push_back(const_cast<char*>(s.c_str()));
    a.push_back(nullptr);
    e.push_back(nullptr);
    ::execve(a[0], a.data(), e.data());
    std::fprintf(stderr, "exec %s failed", a[0]);
    ::_exit(127);
  }
  ::close(p[1]);
  return CollectChild(pid, p[0]);
}

inline RunResult RunSh(const Container& c, const std::string& script,
                       const EnvMap& env = {{"PATH", "/bin"}}) {
  return RunIn(c, {"/bin/sh", "-c", script}, env);
}

// Processes whose command line mentions `needle` (FUSE daemons of a container, say).
inline std::vector<std::string> ProcessesMentioning(const std::string& needle) {
  std::vector<std::string> found;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string pid = e.path().filename().string();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string status = ReadFile(e.path().string() + "/status");
    if (status.find("State:\tZ") != std::string::npos) continue;  // zombies hold nothing
    std::string cmd = ReadFile(e.path().string() + "/cmdline");
    for (char& ch : cmd) {
      if (ch == '\0') ch = ' ';
    }
    if (cmd.find(needle) != std::string::npos) found.push_back(pid + ": " + cmd);
  }
  return found;
}

class RuntimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0 || ::access("/dev/fuse", R_OK | W_OK) != 0 ||
        Sh("command -v squashfuse").empty() || Sh("command -v mksquashfs").empty()) {
      skip_reason_ = new std::string("needs root, /dev/fuse, squashfuse and mksquashfs");
      return;
    }
    dir_ = new TempDir();
    ::chmod(dir_->path().c_str(), 0755);
    if (!MakeTestImage(*dir_ / "rootfs", *dir_ / "image.sqsh")) {
      skip_reason_ = new std::string("could not build the test image");
      return;
    }
    WriteFile(*dir_ / "datatree/from-sqsh.txt", "from the data squashfs\n");
    std::system(("mksquashfs " + *dir_ / "datatree" + " " + *dir_ / "data.sqsh" +
                 " -noappend -no-progress -quiet >/dev/null")
                    .c_str());
    // Containers (docker's default profile, say) may forbid mount namespaces or FUSE mounts.
    std::string probe = "unshare --mount --propagation private sh -c 'mkdir -p " + *dir_ / "probe" +
                        " && squashfuse " + *dir_ / "image.sqsh" + " " + *dir_ / "probe" +
                        " && cat " + *dir_ / "probe/hello.txt" + " && umount " + *dir_ / "probe" +
                        "' 2>&1";
    if (std::string out = Sh(probe); out.find("hello from the image") == std::string::npos) {
      skip_reason_ = new std::string(
          "this machine does not allow a squashfuse mount in a mount namespace: " + out);
      return;
    }
    ::chmod((*dir_ / "data.sqsh").c_str(), 0644);
    user_uid_ = EnsureUser(kTestUser);
    other_uid_ = EnsureUser(kOtherUser);
  }

  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    if (skip_reason_) GTEST_SKIP() << *skip_reason_;
    if (user_uid_ == 0) GTEST_SKIP() << "could not create test user " << kTestUser;
    work_ = std::make_unique<TempDir>();
    ::chmod(work_->path().c_str(), 0755);
  }

  // Loads an EDF written into the per-test directory; the image is the suite's.
  Edf LoadEdf(const std::string& body) {
    WriteFile(*work_ / "test.toml", "image = \"" + *dir_ / "image.sqsh" + "\"\n" + body);
    auto e = LoadEnvironment("./test.toml", Options(work_->path(), {{"HOME", "/nonexistent"}}));
    EXPECT_TRUE(e.ok()) << e.error().message;
    return e.ok() ? *e : Edf{};
  }

  RuntimeOptions Opts(const std::string& user = kTestUser) {
    RuntimeOptions o;
    o.user = *UserIdentity::ForUid(::getpwnam(user.c_str())->pw_uid);
    o.hooks_dir = *work_ / "no-hooks";
    o.state_dir = *work_ / "state";
    return o;
  }

  static inline TempDir* dir_ = nullptr;
  static inline std::string* skip_reason_ = nullptr;
  static inline uid_t user_uid_ = 0, other_uid_ = 0;
  std::unique_ptr<TempDir> work_;
};

}  // namespace strun::edf::testing
