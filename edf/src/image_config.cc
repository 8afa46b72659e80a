#include "strun/edf/image_config.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

namespace strun::edf {
namespace {

std::string ReadFileInRoot(int root_fd, const char* path) {
  int fd = OpenInRoot(root_fd, path, O_RDONLY);
  if (fd < 0) return "";
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0 && s.size() < (1 << 20))
    s.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return s;
}

}  // namespace

int OpenInRoot(int root_fd, const std::string& path, int flags, int mode) {
  struct open_how how;
  std::memset(&how, 0, sizeof how);
  how.flags = static_cast<unsigned long long>(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? static_cast<unsigned long long>(mode) : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  size_t skip = path.find_first_not_of('/');
  std::string rel = skip == std::string::npos ? std::string(".") : path.substr(skip);
  return static_cast<int>(::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof how));
}

ImageConfig ReadImageConfig(int root_fd) {
  ImageConfig cfg;
  std::string env = ReadFileInRoot(root_fd, "etc/environment");
  size_t i = 0;
  while (i < env.size()) {
    size_t j = env.find('\n', i);
    if (j == std::string::npos) j = env.size();
    std::string_view line = std::string_view(env).substr(i, j - i);
    i = j + 1;
    if (line.starts_with("export ")) line.remove_prefix(7);
    size_t eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == std::string_view::npos || eq == 0) continue;
    std::string_view value = line.substr(eq + 1);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    std::string entry(line.substr(0, eq));
    entry += '=';
    entry += value;
    cfg.env.push_back(std::move(entry));
  }
  std::string rc = ReadFileInRoot(root_fd, "etc/rc");
  i = 0;
  while (i < rc.size()) {
    size_t j = rc.find('\n', i);
    if (j == std::string::npos) j = rc.size();
    std::string_view line = std::string_view(rc).substr(i, j - i);
    i = j + 1;
    if (line.starts_with("cd \"")) {
      size_t end = line.find('"', 4);
      if (end != std::string_view::npos) cfg.workdir = std::string(line.substr(4, end - 4));
      break;
    }
  }
  return cfg;
}

}  // namespace strun::edf
