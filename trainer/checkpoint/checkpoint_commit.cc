// checkpoint_commit.h: committing a checkpoint's temporary directory, removing stale ones.
#include "checkpoint/checkpoint_commit.h"

#include <cstdio>
#include <filesystem>

#include "checkpoint/fault_injection.h"
#include "checkpoint/file_sync.h"

namespace strun::train {
namespace fs = std::filesystem;

std::string CheckpointTemporaryName(int64_t step, int64_t nonce) {
  char hex[32];
  std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(nonce));
  return std::to_string(step) + ".tmp-" + hex;
}

Status CommitCheckpointDirectory(const std::string& checkpoints_path, int64_t step,
                                 const std::string& tmp) {
  const fs::path root = checkpoints_path;
  const std::string step_name = std::to_string(step);
  const fs::path final_dir = root / step_name;
  MaybeInjectCheckpointKill(step, "before the rename");
  Status s = FsyncTree(tmp);
  if (s) s = RenameDirectoryReplacing(tmp, final_dir.string());
  if (s) s = WriteFileAtomic((root / "latest.txt").string(), step_name);
  if (s) {
    // Directories left by checkpoints that were killed half-way (best effort: the checkpoint is
    // complete, and the next run's start removes what remains).
    (void)RemoveStaleCheckpointTemporaries(root.string());
  } else if (fs::exists(tmp)) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
  }
  return s;
}

Result<std::vector<std::string>> RemoveStaleCheckpointTemporaries(
    const std::string& checkpoints_path) {
  std::vector<std::string> removed;
  std::error_code ec;
  if (!fs::is_directory(checkpoints_path, ec)) return removed;
  for (const auto& entry : fs::directory_iterator(checkpoints_path, ec)) {
    // Only CheckpointTemporaryName's names, <digits>.tmp-<hex>: never a finished <step> or a
    // user's file.
    const std::string n = entry.path().filename().string();
    const std::size_t dot = n.find(".tmp-");
    std::error_code kind;  // not `ec`: an entry another cleaner removed is no listing error
    if (dot == std::string::npos || dot == 0 || n.find_first_not_of("0123456789") != dot ||
        n.find_first_not_of("0123456789abcdef", dot + 5) != std::string::npos ||
        n.size() == dot + 5 || !entry.is_directory(kind)) {
      continue;
    }
    // Where nodes that do not declare a shared file system share this folder after all, each
    // node's cleaner removes the same folders at once: entries vanishing under remove_all
    // (ENOENT) are the other cleaner's work, which reports its own errors. The barrier after
    // the cleanup keeps writers out until both are done.
    std::error_code rm;
    fs::remove_all(entry.path(), rm);
    if (rm == std::errc::no_such_file_or_directory) continue;
    if (rm) {
      return MakeError("cannot remove the stale temporary checkpoint directory " +
                       entry.path().string() + ": " + rm.message() + "; remove it by hand");
    }
    removed.push_back(n);
  }
  if (ec) return MakeError("cannot list " + checkpoints_path + ": " + ec.message());
  return removed;
}

}  // namespace strun::train
