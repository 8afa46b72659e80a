// strun/edf/image_config.h: the image metadata enroot (and strun-edf import) keep inside a root
// file system: the environment in /etc/environment (KEY=VALUE lines) and the working directory in
// /etc/rc (`cd "DIR"`).
#pragma once

#include <string>
#include <vector>

namespace strun::edf {

struct ImageConfig {
  std::vector<std::string> env;  // KEY=VALUE in file order
  std::string workdir;           // "" when the image names none
};

// Reads the metadata of the root file system open at `root_fd`. Paths resolve inside that root
// (a symlink in the image can never make this read a host file).
ImageConfig ReadImageConfig(int root_fd);

// Opens `path` below the directory `root_fd` as if `root_fd` were "/": absolute symlinks and ".."
// stay inside (openat2 RESOLVE_IN_ROOT). Returns -1 with errno set on failure.
int OpenInRoot(int root_fd, const std::string& path, int flags, int mode = 0);

}  // namespace strun::edf
