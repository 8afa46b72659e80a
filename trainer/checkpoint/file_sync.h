// checkpoint/file_sync.h: durable file writes for checkpoints.
//
// A checkpoint must survive a crash or kill -9 at any instant: files are fsynced before the
// directory that names them is renamed into place, and the rename itself is fsynced in the parent.
#pragma once

#include <string>
#include <string_view>

#include "strun/result.h"

namespace strun::train {

// Creates/truncates `path`, writes `contents`, fsyncs and closes it.
Status WriteFileSynced(const std::string& path, std::string_view contents);

// fsync on a directory, so that entries created or renamed in it are durable.
Status FsyncDirectory(const std::string& path);

// fsyncs every regular file and directory under `root` (and root itself).
Status FsyncTree(const std::string& root);

// Writes `path` atomically: `path`.tmp-<pid> is written and fsynced, renamed over `path`, and the
// parent directory fsynced. A reader sees the old or the new contents, never a mix.
Status WriteFileAtomic(const std::string& path, std::string_view contents);

// Moves directory `from` to `to`. When `to` exists it is atomically exchanged with `from`
// (renameat2 RENAME_EXCHANGE) and the old contents, now at `from`, are removed, so `to` never
// disappears. Fsyncs the parent of `to`.
Status RenameDirectoryReplacing(const std::string& from, const std::string& to);

// Reads a whole file.
Result<std::string> ReadWholeFile(const std::string& path);

}  // namespace strun::train
