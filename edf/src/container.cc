// Container: the keeper process, its protocol with the creator, joining and teardown.
#include "strun/edf/container.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "process.h"
#include "rootfs.h"

namespace strun::edf {
namespace {

// Waits for `pid` up to `timeout`, then kills it. Returns its wait status.
int WaitOrKill(pid_t pid, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (true) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return status;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void StopFuse(const std::vector<pid_t>& pids) {
  for (auto it = pids.rbegin(); it != pids.rend(); ++it) ::kill(*it, SIGTERM);
  for (auto it = pids.rbegin(); it != pids.rend(); ++it)
    WaitOrKill(*it, std::chrono::milliseconds(3000));
}

// Runs the image's entrypoint (/etc/rc, enroot's) as the user and returns the environment it
// hands to its command, KEY=VALUE.
Result<std::vector<std::string>> RunEntrypoint(const RuntimeOptions& opts,
                                               const std::vector<std::string>& env,
                                               const std::string& workdir, bool show_output) {
  if (::access("/etc/rc", R_OK) != 0)
    return MakeError("entrypoint = true, but the image has no /etc/rc entrypoint script");
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return MakeError(fmt::format("pipe: {}", std::strerror(errno)));
  pid_t pid = ::fork();
  if (pid < 0) return MakeError(fmt::format("fork: {}", std::strerror(errno)));
  if (pid == 0) {
    ::dup2(p[1], 3);
    if (!show_output) {
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
    }
    if (!BecomeUser(opts.user).ok() || ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) ::_exit(126);
    if (::chdir(workdir.c_str()) != 0 && ::chdir("/") != 0) ::_exit(126);
    std::vector<char*> envp;
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    const char* argv[] = {"/bin/sh", "/etc/rc", "/bin/sh", "-c", "exec env -0 >&3", nullptr};
    ::execve("/bin/sh", const_cast<char* const*>(argv), envp.data());
    ::_exit(127);
  }
  ::close(p[1]);
  std::string out = internal::ReadAll(p[0]);
  ::close(p[0]);
  int status = WaitOrKill(pid, std::chrono::milliseconds(120000));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return MakeError(fmt::format(
        "the image's entrypoint failed (exit {}); set com.pyxis.entrypoint_log = \"true\" "
        "in [annotations] to see its output",
        WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)));
  }
  std::vector<std::string> result;
  size_t i = 0;
  while (i < out.size()) {
    size_t j = out.find('\0', i);
    if (j == std::string::npos) j = out.size();
    std::string kv = out.substr(i, j - i);
    if (kv.find('=') != std::string::npos && kv.find('=') > 0) result.push_back(kv);
    i = j + 1;
  }
  return result;
}

// The keeper: builds the container, reports to the creator, waits for the end, tears down.
[[noreturn]] void Keeper(const Edf& edf, const RuntimeOptions& opts, const std::string& staging,
                         const EnvMap& host, int report_fd, int control_fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  // Keep only the two pipes: an inherited descriptor (a task's stdout pipe in slurmstepd, say)
  // held open by the keeper for the whole step would keep its reader waiting for EOF.
  int devnull = ::open("/dev/null", O_RDWR);
  for (int fd = 0; fd < 3 && devnull >= 0; ++fd) ::dup2(devnull, fd);
  report_fd = ::fcntl(report_fd, F_DUPFD_CLOEXEC, 100);
  control_fd = ::fcntl(control_fd, F_DUPFD_CLOEXEC, 101);
  ::close_range(3, 99, 0);
  ::close_range(static_cast<unsigned>(std::max(report_fd, control_fd)) + 1, ~0U, 0);
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGINT, SIG_IGN);
  std::signal(SIGPIPE, SIG_IGN);
  // In slurmstepd the creator may have dropped its effective ids for now; the keeper needs root.
  if (::setresgid(0, 0, 0) != 0 || ::setresuid(0, 0, 0) != 0) {
    internal::WriteAll(
        report_fd, nlohmann::json{{"error", "the container runtime needs root privileges"}}.dump());
    ::_exit(1);
  }
  std::vector<pid_t> fuse_pids;
  nlohmann::json report;
  if (::unshare(CLONE_NEWNS) != 0 ||
      ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    report["error"] = fmt::format("private mount namespace: {}", std::strerror(errno));
  } else {
    auto built = internal::BuildRoot(edf, opts, staging, fuse_pids);
    if (!built.ok()) {
      report["error"] = built.error().message;
    } else {
      std::string workdir = edf.workdir                    ? *edf.workdir
                            : built->image_workdir.empty() ? "/"
                                                           : built->image_workdir;
      std::vector<std::string> image_env = built->image_env;
      if (edf.entrypoint) {
        std::vector<std::string> env;
        EnvMap merged = host;
        for (const auto& kv : image_env)
          merged[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
        for (const auto& [k, v] : merged) env.push_back(k + "=" + v);
        auto log = edf.annotations.find("com.pyxis.entrypoint_log");
        auto ep = RunEntrypoint(opts, env, workdir,
                                log != edf.annotations.end() && log->second == "true");
        if (!ep.ok())
          report["error"] = ep.error().message;
        else
          image_env = *ep;
      }
      report["workdir"] = workdir;
      report["image_env"] = image_env;
    }
  }
  internal::WriteAll(report_fd, report.dump());
  ::close(report_fd);
  if (!report.contains("error")) {
    char c;
    while (::read(control_fd, &c, 1) != 0 && errno == EINTR) {
    }
  }
  StopFuse(fuse_pids);
  ::_exit(0);
}

}  // namespace

bool IsProtectedVariable(const std::string& name) {
  return name.starts_with("SLURM_") || name.starts_with("PMI_") || name.starts_with("PMIX_");
}

Result<std::unique_ptr<Container>> Container::Create(const Edf& edf, const RuntimeOptions& opts) {
  if (edf.image_ref.kind == ImageKind::kRegistry)
    return MakeError(ImportHint(edf.image, edf.image_ref));
  if (edf.image_ref.kind != ImageKind::kSquashfs)
    return MakeError("the EDF names no image: there is no container to create");
  if (::getuid() != 0 && ::geteuid() != 0) {
    return MakeError(
        "creating a container needs root: run the step through Slurm with the spank_strun.so "
        "plugin "
        "(srun --environment=...), or run strun as root. Rootless containers are not supported.");
  }
  std::error_code ec;
  std::filesystem::create_directories(opts.state_dir, ec);
  std::string tmpl = opts.state_dir + "/container-XXXXXX";
  if (!::mkdtemp(tmpl.data()))
    return MakeError(
        fmt::format("creating a directory in {}: {}", opts.state_dir, std::strerror(errno)));
  std::unique_ptr<Container> c(new Container());
  c->staging_ = tmpl;
  c->creator_ = ::getpid();
  c->user_ = opts.user;
  c->edf_env_ = edf.env;
  EnvMap host =
      ProcessEnvironment();  // the creator's environment, which the entrypoint starts from
  int report[2], control[2];
  if (::pipe2(report, O_CLOEXEC) != 0)
    return MakeError(fmt::format("pipe: {}", std::strerror(errno)));
  if (::pipe2(control, O_CLOEXEC) != 0) {
    ::close(report[0]);
    ::close(report[1]);
    return MakeError(fmt::format("pipe: {}", std::strerror(errno)));
  }
  pid_t pid = ::fork();
  if (pid < 0) return MakeError(fmt::format("fork: {}", std::strerror(errno)));
  if (pid == 0) {
    ::close(report[0]);
    ::close(control[1]);
    Keeper(edf, opts, c->staging_, host, report[1], control[0]);
  }
  ::close(report[1]);
  ::close(control[0]);
  c->keeper_ = pid;
  c->control_fd_ = control[1];
  std::string text = internal::ReadAll(report[0]);
  ::close(report[0]);
  nlohmann::json r = nlohmann::json::parse(text, nullptr, false);
  if (r.is_discarded() || r.contains("error")) {
    std::string message = r.is_discarded() ? "the container keeper died while setting up"
                                           : r["error"].get<std::string>();
    (void)c->Destroy();
    return MakeError(fmt::format("container for {}: {}",
                                 edf.files.empty() ? edf.image : edf.files.back(), message));
  }
  c->workdir_ = r["workdir"].get<std::string>();
  c->image_env_ = r["image_env"].get<std::vector<std::string>>();
  c->mntns_fd_ = ::open(fmt::format("/proc/{}/ns/mnt", pid).c_str(), O_RDONLY | O_CLOEXEC);
  if (c->mntns_fd_ < 0) {
    std::string message = std::strerror(errno);
    (void)c->Destroy();
    return MakeError(fmt::format("opening the container's mount namespace: {}", message));
  }
  return c;
}

Container::~Container() { (void)Destroy(); }

Status Container::Join() const {
  if (mntns_fd_ < 0) return MakeError("the container is not running");
  if (::setns(mntns_fd_, CLONE_NEWNS) != 0) {
    return MakeError(
        fmt::format("joining the container's mount namespace: {}", std::strerror(errno)));
  }
  if (::chdir(workdir_.c_str()) != 0) {
    return MakeError(fmt::format(
        "workdir {} in the container: {}; create it in the image or fix 'workdir' in the EDF",
        workdir_, std::strerror(errno)));
  }
  return {};
}

Status Container::Enter() const {
  if (auto st = Join(); !st.ok()) return st;
  if (auto st = BecomeUser(user_); !st.ok()) return st;
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return MakeError(fmt::format("PR_SET_NO_NEW_PRIVS: {}", std::strerror(errno)));
  }
  // The directory may be readable only by the user: enter it again with the user's rights.
  if (::chdir(workdir_.c_str()) != 0) {
    return MakeError(
        fmt::format("workdir {} in the container: {}", workdir_, std::strerror(errno)));
  }
  return {};
}

EnvMap Container::TaskEnvironment(const EnvMap& host) const {
  EnvMap env = host;
  for (const auto& kv : image_env_) {
    size_t eq = kv.find('=');
    std::string name = kv.substr(0, eq);
    if (!IsProtectedVariable(name)) env[name] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : edf_env_) {
    if (k.starts_with("SLURM_") && host.count(k)) continue;  // Slurm's per-task values win
    if (v.empty())
      env.erase(k);
    else
      env[k] = v;
  }
  return env;
}

Status Container::Destroy() {
  if (creator_ != ::getpid()) {
    for (int* fd : {&mntns_fd_, &control_fd_}) {
      if (*fd >= 0) ::close(*fd);
      *fd = -1;
    }
    keeper_ = -1;
    staging_.clear();
    return {};
  }
  if (mntns_fd_ >= 0) {
    ::close(mntns_fd_);
    mntns_fd_ = -1;
  }
  if (control_fd_ >= 0) {
    ::close(control_fd_);
    control_fd_ = -1;
  }
  Status result;
  if (keeper_ > 0) {
    int status = WaitOrKill(keeper_, std::chrono::milliseconds(10000));
    if (!WIFEXITED(status) || WEXITSTATUS(status) > 1)
      result = MakeError("the container keeper did not stop cleanly");
    keeper_ = -1;
  }
  if (!staging_.empty()) {
    if (::rmdir(staging_.c_str()) != 0 && errno != ENOENT) {
      result = MakeError(fmt::format("removing {}: {}", staging_, std::strerror(errno)));
    }
    staging_.clear();
  }
  return result;
}

}  // namespace strun::edf
