// strun/edf/mount_spec.h: the EDF `mounts` syntax, SRC[:DST[:FLAGS]].
//
// DST defaults to SRC. FLAGS are joined with '+' (`ro+private`); a sole `sqsh` flag mounts the
// squashfs file SRC at DST instead of bind-mounting it. SRC and DST must be absolute or
// relative with a leading `./` or `../` (made absolute against the submit directory).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "strun/result.h"

namespace strun::edf {

struct MountSpec {
  std::string source;              // absolute, normalised
  std::string target;              // absolute, normalised, inside the container
  std::vector<std::string> flags;  // bind flags in the order written (empty for sqsh)
  bool squashfs = false;           // `sqsh`: mount the squashfs file `source` at `target`

  bool read_only() const;
  std::string ToString() const;  // SRC:DST[:FLAGS], the normal form render prints
  bool operator==(const MountSpec&) const = default;
};

// Bind flags accepted in FLAGS (besides the sole `sqsh`).
const std::vector<std::string>& KnownMountFlags();

// Parses one `mounts` entry, already variable-expanded. `cwd` resolves `./` paths.
Result<MountSpec> ParseMountSpec(std::string_view spec, std::string_view cwd);

// Lexically normalised absolute path: "//a/./b/../c/" -> "/a/c". `..` never climbs above "/".
std::string NormalizePath(std::string_view absolute);

// True for "/..." and for "./...", "../...", "." and "..".
bool IsAbsoluteOrDotRelative(std::string_view path);

// Absolute form of an absolute or dot-relative path, against `cwd`.
std::string MakeAbsolute(std::string_view path, std::string_view cwd);

}  // namespace strun::edf
