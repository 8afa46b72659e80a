// Building the container root in the keeper: image, overlay, system mounts, hooks, EDF mounts,
// pivot_root. Every path inside the root is resolved with RESOLVE_IN_ROOT and every mount goes
// through a file descriptor, so a symlink in the image or in a mount source cannot redirect a
// mount outside the root; mount sources are opened with the user's credentials.
#include "rootfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>

#include "process.h"
#include "strun/edf/image_config.h"
#include "strun/edf/mount_spec.h"
#include "strun/edf/user.h"

namespace strun::edf::internal {
namespace {

// Closes a descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

std::string FdPath(int fd) { return fmt::format("/proc/self/fd/{}", fd); }

Error Errno(const std::string& what) {
  return MakeError(fmt::format("{}: {}", what, std::strerror(errno)));
}

// The descriptor (O_PATH) of `path` inside the root, creating missing directories and, when
// `file` is set, an empty file as the last component.
Result<Fd> EnsureInRoot(int root_fd, const std::string& path, bool file) {
  std::string norm = NormalizePath(path);
  std::vector<std::string> parts;
  for (size_t i = 1; i < norm.size();) {
    size_t j = norm.find('/', i);
    if (j == std::string::npos) j = norm.size();
    parts.push_back(norm.substr(i, j - i));
    i = j + 1;
  }
  std::string prefix;
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string parent = prefix.empty() ? "/" : prefix;
    prefix += "/" + parts[i];
    bool last = i + 1 == parts.size();
    int fd = OpenInRoot(root_fd, prefix, O_PATH | (last && file ? 0 : O_DIRECTORY));
    if (fd >= 0) {
      if (last) return Fd(fd);
      ::close(fd);
      continue;
    }
    if (errno != ENOENT) return Errno(fmt::format("container path {}", prefix));
    Fd dir(OpenInRoot(root_fd, parent, O_PATH | O_DIRECTORY));
    if (!dir.ok()) return Errno(fmt::format("container path {}", parent));
    if (last && file) {
      int f = ::openat(dir.get(), parts[i].c_str(),
                       O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (f < 0 && errno != EEXIST) return Errno(fmt::format("creating mount point {}", prefix));
      if (f >= 0) ::close(f);
    } else if (::mkdirat(dir.get(), parts[i].c_str(), 0755) != 0 && errno != EEXIST) {
      return Errno(fmt::format("creating mount point {}", prefix));
    }
    fd = OpenInRoot(root_fd, prefix, O_PATH | (last && file ? 0 : O_DIRECTORY));
    if (fd < 0) return Errno(fmt::format("container path {}", prefix));
    if (last) return Fd(fd);
    ::close(fd);
  }
  return Fd(::dup(root_fd));
}

Status MountOn(const char* source, int target_fd, const char* type, unsigned long flags,
               const char* data, const std::string& what) {
  if (::mount(source, FdPath(target_fd).c_str(), type, flags, data) != 0)
    return Errno("mounting " + what);
  return {};
}

// Bind-mounts the object open at `src_fd` onto `target_fd` with mount attributes `attr`.
Status BindFd(int src_fd, int target_fd, bool recursive, uint64_t attr, const std::string& what) {
  unsigned rec = recursive ? AT_RECURSIVE : 0;
  Fd tree(static_cast<int>(
      ::open_tree(src_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | rec)));
  if (!tree.ok()) return Errno("cloning " + what);
  if (attr != 0) {
    struct mount_attr a = {};
    a.attr_set = attr;
    if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH | rec, &a, sizeof a) != 0)
      return Errno("setting flags of " + what);
  }
  if (::move_mount(tree.get(), "", target_fd, "",
                   MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0) {
    return Errno("mounting " + what);
  }
  return {};
}

Status BindHostPath(int root_fd, const std::string& host, const std::string& target,
                    uint64_t attr) {
  Fd src(::open(host.c_str(), O_PATH | O_CLOEXEC));
  if (!src.ok()) return {};  // absent on this host: nothing to bind
  struct stat st;
  if (::fstat(src.get(), &st) != 0) return Errno(host);
  auto dst = EnsureInRoot(root_fd, target, !S_ISDIR(st.st_mode));
  if (!dst.ok()) return dst.error();
  return BindFd(src.get(), dst->get(), S_ISDIR(st.st_mode), attr, host);
}

// Starts squashfuse in the foreground on `mountpoint` for the image open at `image_fd`, and waits
// until the mount appears.
Result<pid_t> StartSquashfuse(const RuntimeOptions& opts, int image_fd,
                              const std::string& mountpoint, const std::string& log) {
  std::string exe = FindProgram(opts.squashfuse);
  if (exe.empty())
    return MakeError(fmt::format("'{}' not found in PATH; install squashfuse", opts.squashfuse));
  struct stat before;
  if (::stat(mountpoint.c_str(), &before) != 0) return Errno(mountpoint);
  pid_t pid = ::fork();
  if (pid < 0) return Errno("fork");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    int logfd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (logfd >= 0) {
      ::dup2(logfd, 1);
      ::dup2(logfd, 2);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::fcntl(image_fd, F_SETFD, 0);  // squashfuse opens the image through /dev/fd
    std::string image = fmt::format("/dev/fd/{}", image_fd);
    // The image is the user's: device nodes and setuid bits in it must stay inert.
    const char* options = "ro,allow_other,nodev,nosuid";
    const char* argv[] = {exe.c_str(),        "-f",   "-o", options, image.c_str(),
                          mountpoint.c_str(), nullptr};
    ::execv(exe.c_str(), const_cast<char* const*>(argv));
    ::_exit(127);
  }
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(opts.mount_timeout_ms);
  while (true) {
    struct stat now;
    if (::stat(mountpoint.c_str(), &now) == 0 && now.st_dev != before.st_dev) return pid;
    int status;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      std::string out;
      if (FILE* f = ::fopen(log.c_str(), "r")) {
        char buf[1024];
        size_t n = ::fread(buf, 1, sizeof buf - 1, f);
        out.assign(buf, n);
        ::fclose(f);
      }
      while (!out.empty() && out.back() == '\n') out.pop_back();
      return MakeError(fmt::format("squashfuse could not mount the image (exit {}): {}",
                                   WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                                   out));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return MakeError(
          fmt::format("squashfuse did not mount the image within {} ms", opts.mount_timeout_ms));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Status SetupDev(int root_fd) {
  auto dev = EnsureInRoot(root_fd, "/dev", false);
  if (!dev.ok()) return dev.error();
  if (auto st = MountOn("tmpfs", dev->get(), "tmpfs", MS_NOSUID | MS_NOEXEC,
                        "mode=0755,size=65536k", "/dev");
      !st.ok()) {
    return st;
  }
  Fd d(OpenInRoot(root_fd, "/dev", O_PATH | O_DIRECTORY));
  if (!d.ok()) return Errno("/dev");
  std::vector<std::string> nodes = {"null", "zero", "full", "random", "urandom", "tty"};
  // GPU device nodes, when the host has them.
  if (DIR* host = ::opendir("/dev")) {
    while (struct dirent* e = ::readdir(host)) {
      std::string name = e->d_name;
      if (name.starts_with("nvidia") || name == "dri" || name.starts_with("kfd"))
        nodes.push_back(name);
    }
    ::closedir(host);
  }
  for (const auto& name : nodes) {
    if (auto st = BindHostPath(root_fd, "/dev/" + name, "/dev/" + name, 0); !st.ok()) return st;
  }
  if (::mkdirat(d.get(), "pts", 0755) != 0 && errno != EEXIST) return Errno("/dev/pts");
  if (::mkdirat(d.get(), "shm", 01777) != 0 && errno != EEXIST) return Errno("/dev/shm");
  Fd pts(OpenInRoot(root_fd, "/dev/pts", O_PATH | O_DIRECTORY));
  if (::mount("devpts", FdPath(pts.get()).c_str(), "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620") != 0) {
    if (auto st = BindHostPath(root_fd, "/dev/pts", "/dev/pts", 0); !st.ok()) return st;
  }
  Fd shm(OpenInRoot(root_fd, "/dev/shm", O_PATH | O_DIRECTORY));
  if (auto st = MountOn("tmpfs", shm.get(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", "/dev/shm");
      !st.ok())
    return st;
  const std::pair<const char*, const char*> links[] = {{"ptmx", "pts/ptmx"},
                                                       {"fd", "/proc/self/fd"},
                                                       {"stdin", "/proc/self/fd/0"},
                                                       {"stdout", "/proc/self/fd/1"},
                                                       {"stderr", "/proc/self/fd/2"}};
  for (const auto& [name, target] : links) {
    if (::symlinkat(target, d.get(), name) != 0 && errno != EEXIST)
      return Errno(std::string("/dev/") + name);
  }
  return {};
}

Status SetupSystemMounts(int root_fd) {
  auto proc = EnsureInRoot(root_fd, "/proc", false);
  if (!proc.ok()) return proc.error();
  if (auto st =
          MountOn("proc", proc->get(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr, "/proc");
      !st.ok())
    return st;
  auto sys = EnsureInRoot(root_fd, "/sys", false);
  if (!sys.ok()) return sys.error();
  if (auto st = MountOn("sysfs", sys->get(), "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY,
                        nullptr, "/sys");
      !st.ok()) {
    return st;
  }
  if (auto st = SetupDev(root_fd); !st.ok()) return st;
  auto tmp = EnsureInRoot(root_fd, "/tmp", false);
  if (!tmp.ok()) return tmp.error();
  if (auto st = MountOn("tmpfs", tmp->get(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777", "/tmp");
      !st.ok())
    return st;
  for (const char* f : {"/etc/hosts", "/etc/resolv.conf"}) {
    if (auto st =
            BindHostPath(root_fd, f, f, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV);
        !st.ok())
      return st;
  }
  return {};
}

// Adds `line` to the file at `path` in the root unless a line's field 3 (the id) is `id`.
Status AddDatabaseEntry(int root_fd, const std::string& path, unsigned id,
                        const std::string& line) {
  auto etc = EnsureInRoot(root_fd, "/etc", false);
  if (!etc.ok()) return etc.error();
  Fd f(OpenInRoot(root_fd, path, O_RDWR | O_CREAT | O_NOFOLLOW, 0644));
  if (!f.ok()) return Errno("container " + path);
  std::string content;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(f.get(), buf, sizeof buf)) > 0) content.append(buf, static_cast<size_t>(n));
  size_t i = 0;
  while (i < content.size()) {
    size_t j = content.find('\n', i);
    if (j == std::string::npos) j = content.size();
    std::string_view entry(content.data() + i, j - i);
    size_t c1 = entry.find(':'), c2 = c1 == std::string_view::npos ? c1 : entry.find(':', c1 + 1);
    size_t c3 = c2 == std::string_view::npos ? c2 : entry.find(':', c2 + 1);
    if (c3 != std::string_view::npos && entry.substr(c2 + 1, c3 - c2 - 1) == std::to_string(id))
      return {};
    i = j + 1;
  }
  std::string add = (content.empty() || content.back() == '\n' ? "" : "\n") + line + "\n";
  if (::lseek(f.get(), 0, SEEK_END) < 0 ||
      ::write(f.get(), add.data(), add.size()) != static_cast<ssize_t>(add.size())) {
    return Errno("writing container " + path);
  }
  return {};
}

Status SetupUserDatabase(int root_fd, const UserIdentity& user) {
  struct passwd* pw = ::getpwuid(user.uid);
  std::string name = pw ? pw->pw_name : fmt::format("user{}", user.uid);
  std::string gecos = pw && pw->pw_gecos ? pw->pw_gecos : "";
  std::string home = pw ? pw->pw_dir : "/";
  std::string shell = pw && pw->pw_shell ? pw->pw_shell : "/bin/sh";
  if (auto st = AddDatabaseEntry(
          root_fd, "/etc/passwd", user.uid,
          fmt::format("{}:x:{}:{}:{}:{}:{}", name, user.uid, user.gid, gecos, home, shell));
      !st.ok()) {
    return st;
  }
  struct group* gr = ::getgrgid(user.gid);
  std::string group = gr ? gr->gr_name : fmt::format("group{}", user.gid);
  return AddDatabaseEntry(root_fd, "/etc/group", user.gid,
                          fmt::format("{}:x:{}:", group, user.gid));
}

// Runs the executables in `dir` in name order with `env`. `trusted` (the system dir) requires the
// directory and each hook to be owned by root and not writable by group or others.
std::string RunHooksIn(const std::string& dir, const std::vector<std::string>& env,
                       const std::string& cwd, bool trusted) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return "";  // no hooks
  struct stat st;
  if (trusted && (::fstat(::dirfd(d), &st) != 0 || st.st_uid != 0 || (st.st_mode & 022))) {
    ::closedir(d);
    return fmt::format("hooks directory {} must be owned by root and not writable by others", dir);
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') names.push_back(e->d_name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  for (const auto& name : names) {
    std::string path = dir + "/" + name;
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 0111)) continue;
    if (trusted && (st.st_uid != 0 || (st.st_mode & 022))) {
      return fmt::format("hook {} must be owned by root and not writable by others", path);
    }
    pid_t pid = ::fork();
    if (pid < 0) return fmt::format("fork: {}", std::strerror(errno));
    if (pid == 0) {
      if (::chdir(cwd.c_str()) != 0) ::_exit(126);
      char* argv[] = {const_cast<char*>(path.c_str()), nullptr};
      ::execve(path.c_str(), argv, envp.data());
      ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return fmt::format("hook {} failed ({})", path,
                         WIFEXITED(status) ? fmt::format("exit {}", WEXITSTATUS(status))
                                           : fmt::format("signal {}", WTERMSIG(status)));
    }
  }
  return "";
}

Status RunHooks(const Edf& edf, const RuntimeOptions& opts, const std::string& root) {
  std::vector<std::string> env = {
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "STRUN_CONTAINER_ROOT=" + root,
      "ENROOT_ROOTFS=" + root,
      fmt::format("STRUN_CONTAINER_PID={}", ::getpid()),
      fmt::format("ENROOT_PID={}", ::getpid()),
      fmt::format("STRUN_CONTAINER_UID={}", opts.user.uid),
      fmt::format("STRUN_CONTAINER_GID={}", opts.user.gid)};
  for (const auto& [k, v] : AnnotationEnvironment(edf.annotations)) env.push_back(k + "=" + v);
  if (!opts.hooks_dir.empty()) {
    if (std::string err = RunHooksIn(opts.hooks_dir, env, root, true); !err.empty())
      return MakeError(err);
  }
  std::string user_dir = opts.user_hooks_dir;
  if (user_dir.empty() && !opts.user.home.empty())
    user_dir = opts.user.home + "/.config/strun/hooks.d";
  if (user_dir.empty()) return {};
  // The user's hooks run as the user: listing, checks and execution all happen after dropping.
  return RunAsUser(opts.user, [&] { return RunHooksIn(user_dir, env, root, false); });
}

uint64_t MountAttributes(const MountSpec& m) {
  uint64_t attr = 0;
  for (const auto& f : m.flags) {
    if (f == "ro") attr |= MOUNT_ATTR_RDONLY;
    if (f == "nosuid") attr |= MOUNT_ATTR_NOSUID;
    if (f == "nodev") attr |= MOUNT_ATTR_NODEV;
    if (f == "noexec") attr |= MOUNT_ATTR_NOEXEC;
  }
  return attr;
}

unsigned long Propagation(const MountSpec& m) {
  for (const auto& f : m.flags) {
    if (f == "private") return MS_PRIVATE;
    if (f == "rprivate") return MS_PRIVATE | MS_REC;
    if (f == "slave") return MS_SLAVE;
    if (f == "rslave") return MS_SLAVE | MS_REC;
    if (f == "shared") return MS_SHARED;
    if (f == "rshared") return MS_SHARED | MS_REC;
  }
  return 0;
}

Status SetupEdfMounts(const Edf& edf, const RuntimeOptions& opts, int root_fd,
                      const std::string& staging, std::vector<pid_t>& fuse_pids) {
  int index = 0;
  for (const auto& m : edf.mounts) {
    std::string what = fmt::format("mount \"{}\"", m.ToString());
    auto src = OpenAsUser(opts.user, m.source, m.squashfs ? O_RDONLY : O_PATH);
    if (!src.ok()) return MakeError(fmt::format("{}: source {}", what, src.error().message));
    Fd src_fd(*src);
    struct stat st;
    if (::fstat(src_fd.get(), &st) != 0) return Errno(what);
    if (m.squashfs) {
      if (!S_ISREG(st.st_mode))
        return MakeError(fmt::format("{}: {} is not a squashfs file", what, m.source));
      auto dst = EnsureInRoot(root_fd, m.target, false);
      if (!dst.ok()) return MakeError(fmt::format("{}: {}", what, dst.error().message));
      // squashfuse mounts on a staging directory; the result is then moved into the root by fd.
      std::string point = fmt::format("{}/sqsh{}", staging, index++);
      if (::mkdir(point.c_str(), 0755) != 0) return Errno(point);
      auto pid = StartSquashfuse(opts, src_fd.get(), point, point + ".log");
      if (!pid.ok()) return MakeError(fmt::format("{}: {}", what, pid.error().message));
      fuse_pids.push_back(*pid);
      Fd mounted(::open(point.c_str(), O_PATH | O_CLOEXEC | O_DIRECTORY));
      if (auto s = BindFd(mounted.get(), dst->get(), false,
                          MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID, what);
          !s.ok()) {
        return s;
      }
      continue;
    }
    auto dst = EnsureInRoot(root_fd, m.target, !S_ISDIR(st.st_mode));
    if (!dst.ok()) return MakeError(fmt::format("{}: {}", what, dst.error().message));
    bool recursive = std::find(m.flags.begin(), m.flags.end(), "bind") == m.flags.end();
    // Always nosuid: a host setuid binary (su, sudo) must not act on the container's
    // user-controlled /etc. nodev only as asked: host device nodes keep their host permissions, and
    // a user cannot create one on the host.
    if (auto s = BindFd(src_fd.get(), dst->get(), recursive, MountAttributes(m) | MOUNT_ATTR_NOSUID,
                        what);
        !s.ok())
      return s;
    if (unsigned long prop = Propagation(m)) {
      Fd top(OpenInRoot(root_fd, m.target, O_PATH));
      if (!top.ok() || ::mount(nullptr, FdPath(top.get()).c_str(), nullptr, prop, nullptr) != 0) {
        return Errno(what + ": setting propagation");
      }
    }
  }
  return {};
}

}  // namespace

Result<BuiltRoot> BuildRoot(const Edf& edf, const RuntimeOptions& opts, const std::string& staging,
                            std::vector<pid_t>& fuse_pids) {
  // The staging tmpfs holds the image mount point, the overlay's upper layer and the new root.
  if (::mount("tmpfs", staging.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700") != 0)
    return Errno("staging tmpfs");
  std::string lower = staging + "/lower", upper = staging + "/upper", work = staging + "/work",
              root = staging + "/root";
  for (const auto& d : {lower, upper, work, root}) {
    if (::mkdir(d.c_str(), 0755) != 0) return Errno(d);
  }
  auto image = OpenAsUser(opts.user, edf.image_ref.path, O_RDONLY);
  if (!image.ok()) return MakeError(fmt::format("image: {}", image.error().message));
  Fd image_fd(*image);
  auto fuse = StartSquashfuse(opts, image_fd.get(), lower, staging + "/squashfuse.log");
  if (!fuse.ok())
    return MakeError(fmt::format("image {}: {}", edf.image_ref.path, fuse.error().message));
  fuse_pids.push_back(*fuse);

  // The root holds the user's image: nodev,nosuid keep a device node in it (one a user can put in
  // a squashfs without root) from reaching the host's device, and a setuid binary from running
  // with its owner's rights. Host device nodes are bind-mounted onto /dev individually.
  std::string overlay = fmt::format("lowerdir={},upperdir={},workdir={}", lower, upper, work);
  if (::mount("overlay", root.c_str(), "overlay", MS_NODEV | MS_NOSUID, overlay.c_str()) != 0)
    return Errno("overlay root");
  Fd root_fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_fd.ok()) return Errno(root);

  BuiltRoot built;
  ImageConfig config = ReadImageConfig(root_fd.get());
  built.image_env = config.env;
  built.image_workdir = config.workdir;

  if (auto st = SetupSystemMounts(root_fd.get()); !st.ok()) return st.error();
  if (auto st = SetupUserDatabase(root_fd.get(), opts.user); !st.ok()) return st.error();
  if (auto st = RunHooks(edf, opts, root); !st.ok()) return st.error();
  if (auto st = SetupEdfMounts(edf, opts, root_fd.get(), staging, fuse_pids); !st.ok())
    return st.error();

  if (!edf.writable) {
    struct mount_attr a = {};
    a.attr_set = MOUNT_ATTR_RDONLY;
    if (::mount_setattr(root_fd.get(), "", AT_EMPTY_PATH, &a, sizeof a) != 0)
      return Errno("read-only root");
  }
  if (::fchdir(root_fd.get()) != 0) return Errno("chdir to the new root");
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return Errno("pivot_root");
  if (::umount2(".", MNT_DETACH) != 0) return Errno("detaching the host root");
  if (::chdir("/") != 0) return Errno("chdir /");
  return built;
}

}  // namespace strun::edf::internal
