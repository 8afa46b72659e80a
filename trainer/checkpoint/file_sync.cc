#include "checkpoint/file_sync.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace strun::train {
namespace fs = std::filesystem;

namespace {
Error SysError(const std::string& what, const std::string& path) {
  return MakeError(what + " " + path + ": " + std::strerror(errno));
}
}  // namespace

Status WriteFileSynced(const std::string& path, std::string_view contents) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return SysError("cannot create", path);
  std::size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      Error e = SysError("cannot write", path);
      ::close(fd);
      return e;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Error e = SysError("cannot fsync", path);
    ::close(fd);
    return e;
  }
  if (::close(fd) != 0) return SysError("cannot close", path);
  return {};
}

Status FsyncDirectory(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return SysError("cannot open directory", path);
  int rc = ::fsync(fd);
  Error e = rc != 0 ? SysError("cannot fsync directory", path) : Error{};
  ::close(fd);
  if (rc != 0) return e;
  return {};
}

Status FsyncTree(const std::string& root) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const auto& p = it->path().string();
    if (it->is_directory()) {
      if (auto s = FsyncDirectory(p); !s) return s;
    } else if (it->is_regular_file()) {
      int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return SysError("cannot open", p);
      int rc = ::fsync(fd);
      ::close(fd);
      if (rc != 0) return SysError("cannot fsync", p);
    }
  }
  if (ec) return MakeError("cannot walk " + root + ": " + ec.message());
  return FsyncDirectory(root);
}

Status WriteFileAtomic(const std::string& path, std::string_view contents) {
  std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  if (auto s = WriteFileSynced(tmp, contents); !s) return s;
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Error e = SysError("cannot rename " + tmp + " to", path);
    ::unlink(tmp.c_str());
    return e;
  }
  fs::path parent = fs::path(path).parent_path();
  return FsyncDirectory(parent.empty() ? "." : parent.string());
}

Status RenameDirectoryReplacing(const std::string& from, const std::string& to) {
  fs::path parent = fs::path(to).parent_path();
  std::string parent_s = parent.empty() ? "." : parent.string();
  if (::rename(from.c_str(), to.c_str()) == 0) return FsyncDirectory(parent_s);
  if (errno != ENOTEMPTY && errno != EEXIST) return SysError("cannot rename " + from + " to", to);
  // `to` exists with contents: swap atomically, then delete the old one (now at `from`).
  if (::syscall(SYS_renameat2, AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_EXCHANGE) !=
      0) {
    return SysError("cannot exchange " + from + " with", to);
  }
  if (auto s = FsyncDirectory(parent_s); !s) return s;
  std::error_code ec;
  fs::remove_all(from, ec);
  if (ec) return MakeError("cannot remove the replaced checkpoint " + from + ": " + ec.message());
  return {};
}

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError("cannot read " + path + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace strun::train
