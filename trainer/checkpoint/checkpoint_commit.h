// checkpoint/checkpoint_commit.h: a checkpoint's temporary directory, made the step directory
// atomically, and the temporaries of interrupted writes removed. Torch-free.
//
// Every rank writes into <checkpoints_path>/<step>.tmp-<nonce> (a random nonce per save, agreed by
// all ranks). Committing fsyncs the whole
// tree, renames it to <step> (exchanged atomically with an existing <step>) and only then replaces
// latest.txt (temp file + fsync + rename + fsync of the directory): a process killed at any point
// leaves the previous checkpoint and latest.txt intact (file_sync.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "strun/result.h"

namespace strun::train {

// The temporary directory's name for `step` (relative to checkpoints_path): <step>.tmp-<hex>.
std::string CheckpointTemporaryName(int64_t step, int64_t nonce);

// Makes `tmp` (complete, every file fsynced by its writer) the step directory `step` of
// `checkpoints_path` and points latest.txt at it; on success also removes what killed writes left
// (best effort), on failure `tmp`. Errors name the path.
Status CommitCheckpointDirectory(const std::string& checkpoints_path, int64_t step,
                                 const std::string& tmp);

// Removes the <step>.tmp-* directories in `checkpoints_path` that an interrupted write left (never
// a finished <step>); returns their names. Only safe while no process writes a checkpoint there:
// the trainer calls it on the owner ranks at start, before any rank writes, then waits for all.
Result<std::vector<std::string>> RemoveStaleCheckpointTemporaries(
    const std::string& checkpoints_path);

}  // namespace strun::train
