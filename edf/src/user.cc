#include "strun/edf/user.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "process.h"

namespace strun::edf {

UserIdentity UserIdentity::OfProcess() {
  UserIdentity u;
  u.uid = ::getuid();
  u.gid = ::getgid();
  int n = ::getgroups(0, nullptr);
  if (n > 0) {
    u.groups.resize(static_cast<size_t>(n));
    n = ::getgroups(n, u.groups.data());
    u.groups.resize(n > 0 ? static_cast<size_t>(n) : 0);
  }
  if (struct passwd* pw = ::getpwuid(u.uid)) {
    u.name = pw->pw_name;
    u.home = pw->pw_dir;
  }
  return u;
}

Result<UserIdentity> UserIdentity::ForUid(uid_t uid) {
  struct passwd pw, *res = nullptr;
  std::vector<char> buf(16384);
  if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &res) != 0 || !res) {
    return MakeError(fmt::format("user id {} has no passwd entry on this node", uid));
  }
  UserIdentity u;
  u.uid = uid;
  u.gid = pw.pw_gid;
  u.name = pw.pw_name;
  u.home = pw.pw_dir;
  int n = 64;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  if (::getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<size_t>(n));
    ::getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n);
  }
  groups.resize(static_cast<size_t>(n));
  u.groups = groups;
  return u;
}

Status BecomeUser(const UserIdentity& user) {
  if (::geteuid() == 0 || ::getuid() == 0) {
    if (::setgroups(user.groups.size(), user.groups.data()) != 0) {
      return MakeError(fmt::format("setgroups for uid {}: {}", user.uid, std::strerror(errno)));
    }
  }
  if (::setresgid(user.gid, user.gid, user.gid) != 0) {
    return MakeError(fmt::format("setresgid({}): {}", user.gid, std::strerror(errno)));
  }
  if (::setresuid(user.uid, user.uid, user.uid) != 0) {
    return MakeError(fmt::format("setresuid({}): {}", user.uid, std::strerror(errno)));
  }
  return {};
}

Status RunAsUser(const UserIdentity& user, const std::function<std::string()>& fn) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return MakeError(fmt::format("pipe: {}", std::strerror(errno)));
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(p[0]);
    ::close(p[1]);
    return MakeError(fmt::format("fork: {}", std::strerror(errno)));
  }
  if (pid == 0) {
    ::close(p[0]);
    std::string err;
    if (user.uid != ::geteuid() || user.gid != ::getegid()) {
      if (auto st = BecomeUser(user); !st.ok()) err = st.error().message;
    }
    if (err.empty()) err = fn();
    internal::WriteAll(p[1], err);
    ::_exit(err.empty() ? 0 : 1);
  }
  ::close(p[1]);
  std::string err = internal::ReadAll(p[0]);
  ::close(p[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!err.empty()) return MakeError(err);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return MakeError("check as user failed unexpectedly");
  return {};
}

namespace {

// One byte carrying one descriptor (SCM_RIGHTS), as sent and as received. Stack only: the sender
// runs as the user between fork and exit.
struct FdMessage {
  char byte = 0;
  struct iovec iov = {&byte, 1};
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr msg = {};
  FdMessage() {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
  }
  FdMessage(const FdMessage&) = delete;  // iov and msg point into the object
  FdMessage& operator=(const FdMessage&) = delete;
};

}  // namespace

Result<int> OpenAsUser(const UserIdentity& user, const std::string& path, int flags) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return MakeError(fmt::format("socketpair: {}", std::strerror(errno)));
  }
  auto st = RunAsUser(user, [&]() -> std::string {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) return fmt::format("{}: {} (as uid {})", path, std::strerror(errno), user.uid);
    FdMessage m;
    struct cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
    if (::sendmsg(sv[1], &m.msg, 0) != 1) return fmt::format("sendmsg: {}", std::strerror(errno));
    return "";
  });
  ::close(sv[1]);
  if (!st.ok()) {
    ::close(sv[0]);
    return st.error();
  }
  FdMessage m;
  ssize_t n = ::recvmsg(sv[0], &m.msg, MSG_CMSG_CLOEXEC);
  ::close(sv[0]);
  struct cmsghdr* c = n == 1 ? CMSG_FIRSTHDR(&m.msg) : nullptr;
  if (!c || c->cmsg_type != SCM_RIGHTS)
    return MakeError(fmt::format("{}: no descriptor came back", path));
  int fd;
  std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
  return fd;
}

}  // namespace strun::edf
