// strun's own cgroup (own_cgroup.h): found from /proc/self/cgroup and /proc/self/mountinfo.
#include "own_cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "strun/clock.h"

namespace strun::launcher {
namespace {

// The mount point of the cgroup2 hierarchy ("" when there is none).
std::string Cgroup2Mount() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER"
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream head(line.substr(0, dash));
    std::string id, parent, dev, root, mount_point;
    head >> id >> parent >> dev >> root >> mount_point;
    if (root == "/") return mount_point;  // a bind mount of a subtree would need path mapping
  }
  return "";
}

// strun's cgroup v2 path ("0::/some/path"), "" when unknown.
std::string OwnCgroupPath() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0) return line.substr(3);
  return "";
}

// Reads a small file into buf (NUL-terminated); false when it cannot be read.
bool ReadSmall(const char* path, char* buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n < 0) return false;
  buf[n] = '\0';
  return true;
}

bool Populated(const char* dir) {
  char path[4096], buf[256];
  snprintf(path, sizeof path, "%s/cgroup.events", dir);
  if (!ReadSmall(path, buf, sizeof buf)) return false;  // gone
  const char* p = strstr(buf, "populated ");
  return p && p[10] == '1';
}

// SIGKILL to every process cgroup.procs lists (kernels before 5.14 have no cgroup.kill).
void KillListed(const char* dir) {
  char path[4096], buf[65536];
  snprintf(path, sizeof path, "%s/cgroup.procs", dir);
  if (!ReadSmall(path, buf, sizeof buf)) return;
  for (char* p = buf; *p;) {
    char* end = nullptr;
    long pid = strtol(p, &end, 10);
    if (end == p) break;
    if (pid > 1) kill(pid_t(pid), SIGKILL);
    p = end;
    while (*p == '\n') ++p;
  }
}

}  // namespace

Result<std::string> CreateOwnCgroup() {
  const std::string mount = Cgroup2Mount();
  if (mount.empty()) return MakeError("no cgroup v2 hierarchy is mounted");
  const std::string own = OwnCgroupPath();
  if (own.empty()) return MakeError("/proc/self/cgroup has no cgroup v2 entry");
  std::string dir = mount + (own == "/" ? "" : own) + "/strun-" + std::to_string(getpid());
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return MakeError("cannot create " + dir + ": " + std::strerror(errno));
  // Joining needs write access to cgroup.procs here and in strun's cgroup (the common ancestor).
  const std::string procs = dir + "/cgroup.procs";
  if (access(procs.c_str(), W_OK) != 0 ||
      access((mount + own + "/cgroup.procs").c_str(), W_OK) != 0) {
    rmdir(dir.c_str());
    return MakeError("cannot move processes into " + dir + ": " + std::strerror(errno));
  }
  return dir;
}

bool KillAndRemoveCgroup(const char* dir, double timeout_s) {
  char path[4096];
  snprintf(path, sizeof path, "%s/cgroup.kill", dir);
  bool killed = false;
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    killed = write(fd, "1", 1) == 1;
    close(fd);
  }
  const double deadline = MonoSeconds() + timeout_s;
  while (Populated(dir) && MonoSeconds() < deadline) {
    if (!killed) KillListed(dir);  // also catches processes forked while we read the list
    usleep(2000);
  }
  return rmdir(dir) == 0 || errno == ENOENT;
}

}  // namespace strun::launcher
