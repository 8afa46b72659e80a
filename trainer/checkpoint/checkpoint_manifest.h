// checkpoint/checkpoint_manifest.h: checksums of a checkpoint's files, written with it and
// verified on load.
//
//   <step>/checksums/rank-<R>-of-<D>.json
//     {"algorithm": "crc32c", "files": {"<path under <step>>": {"bytes": N, "crc32c": "e3069283"}}}
//
// Each rank lists the files it wrote (rank 0: metadata, scheduler, model weights and its optimizer
// and random states; another rank: its optimizer shard and random state), so writing needs no
// collective, and a node's copy of a checkpoint on an unshared file system lists what that node
// holds. The manifests are written into the temporary folder with the rest, so they are renamed
// into place with it (checkpoint.h). Deterministic: keys sorted, no timestamps.
//
// config.yaml is not listed: resuming never reads it (the run's own config file is used), and its
// expanded run name holds the start date, while two runs that trained the same steps must write
// byte-identical checkpoints (tests/recovery compares every file but config.yaml).
//
// A checkpoint without a checksums/ folder was written before strun-train had them: it loads with
// a warning (the caller's), unverified.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "strun/result.h"

namespace strun::train {

inline constexpr const char* kChecksumsDir = "checksums";

struct FileChecksum {
  uint64_t bytes = 0;
  uint32_t crc32c = 0;
  bool operator==(const FileChecksum&) const = default;
};

// Reads `path` and checksums its contents.
Result<FileChecksum> ChecksumFile(const std::string& path);

// The file name of rank `rank`'s manifest among `world` ranks: "rank-0-of-2.json".
std::string ManifestFileName(int rank, int world);

class ChecksumManifest {
 public:
  // Records `relative` (a path under `step_dir`) with the checksum of its contents on disk.
  Status Add(const std::string& step_dir, const std::string& relative);
  // Writes <step_dir>/checksums/<file_name>, fsynced.
  Status Write(const std::string& step_dir, const std::string& file_name) const;

  // Every checksums/*.json of `step_dir`, merged; nullopt when the folder does not exist (a
  // checkpoint written before checksums). Errors name the manifest that is unreadable or that
  // contradicts another.
  static Result<std::optional<ChecksumManifest>> Read(const std::string& step_dir);

  // Checks the contents of <step_dir>/<relative> against its entry. Errors name the file, what
  // differs, and which earlier checkpoint to resume from instead.
  Status Verify(const std::string& step_dir, const std::string& relative) const;

  const std::map<std::string, FileChecksum>& files() const { return files_; }

 private:
  std::map<std::string, FileChecksum> files_;
};

// What to do about a damaged checkpoint <root>/<step>: resume from the newest earlier step folder
// of <root>, named, or start from scratch when there is none.
std::string EarlierCheckpointAdvice(const std::string& step_dir);

}  // namespace strun::train
